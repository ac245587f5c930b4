-- A resume's batch (queue_jobs/services/pauses.py): dispatches up to `batch` of the type's
-- held jobs (queued, no dispatch), oldest first, each by jobs_dispatch_run in a statement
-- of its own, so that their dispatch ids follow their creation order and, with fair
-- dispatch, each owner's jobs take its next turns in that order (jobs_dispatch_fair_turn
-- sees the dispatches made before it). The caller holds the type's lock
-- (jobs_dispatch_unless_paused). Answers how many it dispatched.
CREATE OR REPLACE FUNCTION jobs_dispatch_held(job_type text, queue_name text, task_name text,
                                              fair boolean, batch integer)
    RETURNS integer
    LANGUAGE plpgsql
AS $$
DECLARE
    held record;
    dispatched integer := 0;
BEGIN
    FOR held IN SELECT id, owner_user_id, owner_session_id
                  FROM jobs
                 WHERE type = job_type AND status = 'queued' AND dispatch_id IS NULL
                 ORDER BY created_at, id
                 LIMIT batch
                   FOR UPDATE
    LOOP
        UPDATE jobs
           SET dispatch_id = jobs_dispatch_run(queue_name, task_name, held.id,
                                               held.owner_user_id, held.owner_session_id,
                                               fair)
         WHERE id = held.id;
        dispatched := dispatched + 1;
    END LOOP;
    RETURN dispatched;
END
$$;
