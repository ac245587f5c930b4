-- One step's record with the LLM calls it made (record_failed_step): jobs_record_steps
-- for a single step, so the rule is written once. `_usage` as in jobs_record_steps;
-- `_reasks`: the answers asked for again (migration 0019 added it, with a default).
-- LANGUAGE sql: its body is checked when it is created, against jobs_record_steps, whose
-- file comes later (migrate applies the files twice for that: README.md here).
CREATE OR REPLACE FUNCTION jobs_record_step(_job_id uuid, _job_type text, _attempt integer,
                                            _step text, _outcome text, _duration_ms integer,
                                            _usage jsonb, _reasks integer DEFAULT 0)
    RETURNS void
LANGUAGE sql AS $$
    SELECT jobs_record_steps(_job_id, _job_type, _attempt, _outcome, jsonb_build_array(
        jsonb_build_object('step', _step, 'duration_ms', _duration_ms, 'usage', _usage,
                           'reasks', _reasks)));
$$;
