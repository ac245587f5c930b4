-- A resume's batch (queue_jobs/services/pauses.py): dispatches up to `batch` of the type's
-- held jobs (queued, no dispatch), oldest first, each by jobs_dispatch_run in a statement
-- of its own, so that their dispatch ids follow their creation order. jobs_dispatch_run
-- ranks each behind all of its owner's active jobs, the held ones still waiting too; so
-- with fair dispatch the owners of the batch's jobs then take their ranks again
-- (jobs_rerank), as when one of their jobs ends. The caller holds the type's lock
-- (jobs_dispatch_unless_paused). Answers how many it dispatched.
CREATE OR REPLACE FUNCTION jobs_dispatch_held(job_type text, queue_name text, task_name text,
                                              fair boolean, batch integer)
    RETURNS integer
    LANGUAGE plpgsql
AS $$
DECLARE
    held record;
    dispatched integer := 0;
    user_ids uuid[] := '{}';
    session_ids text[] := '{}';
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
        IF held.owner_user_id IS NOT NULL THEN
            user_ids := user_ids || held.owner_user_id;
        ELSE
            session_ids := session_ids || held.owner_session_id;
        END IF;
    END LOOP;
    IF fair THEN
        PERFORM jobs_rerank(owner_user_id, NULL)
           FROM (SELECT DISTINCT unnest(user_ids) AS owner_user_id) owners;
        PERFORM jobs_rerank(NULL, owner_session_id)
           FROM (SELECT DISTINCT unnest(session_ids) AS owner_session_id) owners;
    END IF;
    RETURN dispatched;
END
$$;
