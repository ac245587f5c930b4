-- One place that turns "run this job" into a procrastinate job, used by create
-- (jobs_create), retry (retry_failed_job) and re-dispatch (redispatch_job). Runs in the
-- caller's statement, so the dispatch commits (and NOTIFYs) with it.
-- procrastinate's own API: a procrastinate upgrade reviews this file
-- (sql/queries/procrastinate.sql lists what else).
CREATE OR REPLACE FUNCTION jobs_dispatch_run(queue_name text, task_name text, job_id uuid)
    RETURNS bigint
    LANGUAGE sql
AS $$
    SELECT (procrastinate_defer_jobs_v1(ARRAY[ROW(
        queue_name, task_name, 0, NULL, NULL, jsonb_build_object('job_id', job_id::text), NULL
    )::procrastinate_job_to_defer_v1]))[1]
$$;
