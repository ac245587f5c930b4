-- Named statements of the operator's console (queue_jobs/services/ops_jobs.py,
-- ops_actions.py): the job search, counts, a job's page, the audit trail. The filter is
-- sql/functions/ops_jobs_matching.sql; %(filter...)s below are its arguments. The store
-- runs the filtered ones unprepared (a custom plan per call: see that file). A job's
-- dispatches (procrastinate's rows) are read in sql/queries/procrastinate.sql.

-- name: ops_search_jobs
-- A page, newest first by (created_at, id): after the cursor's (created_at, id), if any.
-- The row comparison is an index condition on (..., created_at, id).
SELECT j.id, j.type, j.status, j.progress, j.current_step, j.error_code, j.attempt,
       j.owner_user_id, j.owner_session_id, j.llm_calls, j.llm_tokens, j.created_at,
       j.updated_at, j.finished_at
  FROM ops_jobs_matching(%(status)s, %(type)s, %(error_code)s, %(user_id)s, %(email)s,
                         %(session_id)s, %(created_from)s, %(created_to)s, %(id_low)s,
                         %(id_high)s) j
 WHERE (%(after_created)s::timestamptz IS NULL
        OR (j.created_at, j.id) < (%(after_created)s::timestamptz, %(after_id)s::uuid))
 ORDER BY j.created_at DESC, j.id DESC
 LIMIT %(limit)s;

-- name: ops_count_jobs
-- How many jobs the filter matches, by status (live counts, a bulk action's dry run).
SELECT j.status, count(*) AS jobs
  FROM ops_jobs_matching(%(status)s, %(type)s, %(error_code)s, %(user_id)s, %(email)s,
                         %(session_id)s, %(created_from)s, %(created_to)s, %(id_low)s,
                         %(id_high)s) j
 GROUP BY j.status
 ORDER BY j.status;

-- name: ops_get_job
-- A job's page: the whole row, and its owner's email if it is a user's.
SELECT j.id, j.type, j.status, j.progress, j.current_step, j.attempt, j.lost_runs, j.input,
       j.result, j.error, j.error_code, j.dispatch_id, j.cancel_requested_at,
       j.step_started_at, j.run_started_at, j.created_at, j.updated_at, j.finished_at,
       j.llm_calls, j.llm_tokens, j.owner_user_id, j.owner_session_id,
       u.email AS owner_email
  FROM jobs j
  LEFT JOIN users u ON u.id = j.owner_user_id
 WHERE j.id = %(id)s;

-- name: ops_job_steps
-- Every run of every step of the job, in the order they ended (job_steps_job_idx).
SELECT step, attempt, outcome, finished_at - make_interval(secs => duration_ms / 1000.0)
           AS started_at,
       duration_ms, llm_calls, input_tokens, output_tokens, reasks, finished_at
  FROM job_steps
 WHERE job_id = %(id)s
 ORDER BY finished_at, id;

-- name: ops_job_images
SELECT id, prompt, created_at FROM images WHERE job_id = %(id)s ORDER BY created_at, id;

-- name: ops_job_audit
-- The operators' actions that named this job, newest first (ops_audit_job_ids_idx).
SELECT id, at, actor, action, job_count, detail
  FROM ops_audit
 WHERE job_ids @> ARRAY[%(id)s::uuid]
 ORDER BY id DESC
 LIMIT 50;

-- name: ops_insert_audit
INSERT INTO ops_audit (actor, action, filter, job_ids, job_count, detail)
VALUES (%(actor)s, %(action)s, %(filter)s, %(job_ids)s, %(job_count)s, %(detail)s)
RETURNING id, at;

-- name: ops_list_audit
-- The audit trail, newest first, after the cursor's id if any (the primary key).
SELECT id, at, actor, action, filter, job_ids, job_count, detail
  FROM ops_audit
 WHERE %(before_id)s::bigint IS NULL OR id < %(before_id)s
 ORDER BY id DESC
 LIMIT %(limit)s;
