-- One place that turns "run this job" into a procrastinate job, used by create
-- (jobs_create), retry (retry_failed_job) and re-dispatch (redispatch_job) through
-- jobs_dispatch_unless_paused, and by a resume (jobs_dispatch_held). Runs in the
-- caller's statement, so the dispatch commits (and NOTIFYs) with it.
-- Fair dispatch (fair): procrastinate fetches by priority DESC, id ASC, so a dispatch's
-- priority is 1 - its rank among its owner's active jobs (the others, then this one: it
-- ranks last), and an owner's k-th job waits behind every other owner's jobs of lower
-- rank; jobs_rerank_owner moves it up as the owner's jobs end. Off: 0, plain FIFO.
-- procrastinate's own API: a procrastinate upgrade reviews this file
-- (sql/queries/procrastinate.sql lists what else).
CREATE OR REPLACE FUNCTION jobs_dispatch_run(queue_name text, task_name text, job_id uuid,
                                             user_id uuid, session_id text, fair boolean)
    RETURNS bigint
    LANGUAGE sql
AS $$
    SELECT (procrastinate_defer_jobs_v1(ARRAY[ROW(
        queue_name, task_name,
        -- jobs_active_count reads the owner's partial index; this job itself counts
        -- only when it is active already (a re-dispatch), not on create or retry.
        CASE WHEN fair THEN -(jobs_active_count(user_id, session_id)
                              - (SELECT count(*) FROM jobs
                                  WHERE id = job_id AND status IN ('queued', 'running')))::int
             ELSE 0 END,
        NULL, NULL, jsonb_build_object('job_id', job_id::text), NULL
    )::procrastinate_job_to_defer_v1]))[1]
$$;
