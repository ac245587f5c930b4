-- jobs_dispatch_run unless the job's type is paused (job_type_pauses): then NULL, and the
-- job stays queued with no dispatch (held) until a resume dispatches it. What create
-- (jobs_create), retry (retry_failed_job) and re-dispatch (redispatch_job) call, inside
-- their own statement: no round trip of its own.
-- The type's lock, shared here and taken exclusively by a pause or a resume (the named
-- query lock_key on 'job-type:<type>', the same key as lock_key.sql's hash), orders each
-- dispatch with a pause: a dispatch made first is committed before the pause looks for
-- the type's dispatches to take back; one made after sees the pause. PL/pgSQL, not SQL:
-- the check is a statement of its own, so its snapshot is taken after the lock is granted.
CREATE OR REPLACE FUNCTION jobs_dispatch_unless_paused(job_type text, queue_name text,
                                                       task_name text, job_id uuid,
                                                       user_id uuid, session_id text,
                                                       fair boolean)
    RETURNS bigint
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtextextended('job-type:' || job_type, 0));
    IF EXISTS (SELECT FROM job_type_pauses p WHERE p.type = job_type) THEN
        RETURN NULL;
    END IF;
    RETURN jobs_dispatch_run(queue_name, task_name, job_id, user_id, session_id, fair);
END
$$;
