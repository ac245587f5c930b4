-- One place that turns "run this job" into a procrastinate job, used by create
-- (jobs_create), retry (retry_failed_job) and re-dispatch (redispatch_job) through
-- jobs_dispatch_unless_paused, and by a resume (jobs_dispatch_held). Runs in the
-- caller's statement, so the dispatch commits (and NOTIFYs) with it.
-- Fair dispatch (fair): procrastinate fetches by priority DESC, id ASC, so a dispatch's
-- priority is minus its owner's turn (jobs_dispatch_fair_turn), set here once: owners
-- take turns, FIFO within one owner. Off: 0, plain FIFO.
-- procrastinate's own API: a procrastinate upgrade reviews this file
-- (sql/queries/procrastinate.sql lists what else).
CREATE OR REPLACE FUNCTION jobs_dispatch_run(queue_name text, task_name text, job_id uuid,
                                             user_id uuid, session_id text, fair boolean)
    RETURNS bigint
    LANGUAGE sql
AS $$
    SELECT (procrastinate_defer_jobs_v1(ARRAY[ROW(
        queue_name, task_name,
        CASE WHEN fair THEN -jobs_dispatch_fair_turn(queue_name, user_id, session_id) ELSE 0 END,
        NULL, NULL, jsonb_build_object('job_id', job_id::text), NULL
    )::procrastinate_job_to_defer_v1]))[1]
$$;
