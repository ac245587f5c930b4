-- A worker's run takes its job (the claim): only the job's current dispatch may, and only
-- while the job is active and not being cancelled. The step the row shows (a fresh job's
-- first, _first_steps: type -> key; or the one a resumed run stopped at) starts now.
-- step_parts: what the unfinished steps already made. No row: the dispatch is no longer
-- current. The job is found by its dispatch (jobs_dispatch_idx) and its id as text, so
-- that a dispatch's malformed job_id argument matches nothing instead of failing.
-- PL/pgSQL, not LANGUAGE sql: its UPDATE's plan is kept for the session (a LANGUAGE sql
-- body is planned again at every call, as jobs_record_steps says).
-- VOLATILE (the default) on purpose: called in the statement that fetches the dispatch
-- (fetch_and_claim_job, sql/queries/procrastinate.sql), it reads with a snapshot taken
-- after procrastinate's fetch, which sees the job of any dispatch that fetch found (the
-- statement's own snapshot, older, may not: a job created meanwhile).
CREATE OR REPLACE FUNCTION jobs_claim(_dispatch_id bigint, _job_id text, _first_steps jsonb)
    RETURNS TABLE (id uuid, type text, input jsonb, step_outputs jsonb, step_parts jsonb,
                   progress smallint, attempt integer, current_step text)
    LANGUAGE plpgsql
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    UPDATE jobs
       SET status = 'running', run_started_at = now(), step_started_at = now(),
           current_step = coalesce(jobs.current_step, _first_steps ->> jobs.type),
           updated_at = now()
     WHERE jobs.dispatch_id = _dispatch_id AND jobs.id::text = _job_id
       AND jobs.status IN ('queued', 'running') AND jobs.cancel_requested_at IS NULL
    RETURNING jobs.id, jobs.type, jobs.input, jobs.step_outputs, jobs.step_parts,
              jobs.progress, jobs.attempt, jobs.current_step;
END;
$$;
