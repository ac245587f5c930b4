-- Step records, for several steps at once: one insert, and the run's last steps with the
-- job's result, in the run's last write (save_steps). `_steps` is a JSON array of
-- {step, duration_ms, usage, reasks}; usage is a JSON array of {model, calls, input_tokens,
-- output_tokens}: the calls the step made, kept on its record; reasks (optional, 0): the
-- unusable answers it asked for again (migration 0019). The LLM usage totals (the
-- job's llm_calls, llm_usage_daily) are not written here: each call adds itself as it
-- returns (record_llm_call), so a run killed mid-step leaves none out. The caller updates
-- the job row itself.
-- PL/pgSQL, not LANGUAGE sql: a LANGUAGE sql function is planned again at every call
-- (PostgreSQL before 18), and planning was most of a run's last write (EXPLAIN ANALYZE:
-- 0.37 of 0.50 ms). PL/pgSQL keeps each statement's plan for the session.
CREATE OR REPLACE FUNCTION jobs_record_steps(_job_id uuid, _job_type text, _attempt integer,
                                             _outcome text, _steps jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_steps (job_id, job_type, step, attempt, outcome, duration_ms, llm_calls,
                           input_tokens, output_tokens, reasks)
    SELECT _job_id, _job_type, s.step, _attempt, _outcome, s.duration_ms,
           coalesce(u.calls, 0), coalesce(u.input_tokens, 0), coalesce(u.output_tokens, 0),
           coalesce(s.reasks, 0)
      FROM ROWS FROM (jsonb_to_recordset(_steps)
                      AS (step text, duration_ms integer, usage jsonb, reasks integer))
           WITH ORDINALITY AS s(step, duration_ms, usage, reasks, position),
           LATERAL (SELECT sum(r.calls) AS calls, sum(r.input_tokens) AS input_tokens,
                           sum(r.output_tokens) AS output_tokens
                      FROM jsonb_to_recordset(s.usage)
                           AS r(model text, calls integer, input_tokens bigint,
                                output_tokens bigint)) AS u
     ORDER BY s.position;
END;
$$;
