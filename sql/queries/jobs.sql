-- Named statements on the jobs table. Each block starts with `-- name: <python name>`.
-- Worker writes are fenced: `AND dispatch_id = %(dispatch_id)s AND status = 'running'
-- AND cancel_requested_at IS NULL`; zero rows means this run was superseded (cancelled,
-- reaped, retried) and must stop. A requested cancel fences at once, before the watchdog
-- has written the final state, so a cancelled job never saves or succeeds.
-- Dispatch goes through jobs_dispatch_run (procrastinate_defer_jobs_v1) inside the same
-- statement (jobs_create's insert, a retry's update), so the job row and its
-- procrastinate job commit (and NOTIFY) together; for a paused type's job it does not
-- happen (jobs_dispatch_unless_paused): the job is held, queued with no dispatch, and
-- the status reads show the pause's reason (pause_reason; sql/queries/pauses.sql). The stored functions called here are in
-- sql/functions; the statements on procrastinate's tables in sql/queries/procrastinate.sql.

-- name: create_job
-- A new job or a refusal, in one statement (sql/functions/jobs_create.sql).
SELECT refused, retry_after_s, dispatch_id
  FROM jobs_create(%(id)s, %(type)s, %(owner_user_id)s, %(owner_session_id)s, %(input)s,
                   %(owner_lock)s, %(max_active)s, %(address_key)s, %(address_limit)s,
                   %(address_window_s)s, %(queue)s, %(task)s, %(inline)s, %(fair)s);

-- name: beat_inline_run
UPDATE jobs SET inline_heartbeat_at = now()
 WHERE id = %(id)s AND dispatch_id = %(dispatch_id)s AND status = 'running';

-- name: get_job_outcome
SELECT status, result, error, error_code FROM jobs WHERE id = %(id)s;

-- name: get_owned_job
-- A finished job's document never changes until the row does: its ETag is the row's
-- version (finished_etag; queue_jobs.services.live computes the same from memory), so a poll that already has it needs no `result` read (%(known)s:
-- the client's If-None-Match tags, space-separated; %(any)s: it sent `*`).
-- A user's token finds nothing once the account is gone (the caller then tells 401 from
-- 404): checked here, in the status poll's one statement, not in a round trip of its own.
SELECT id, type, owner_user_id, owner_session_id, status, progress, current_step, error,
       error_code,
       CASE WHEN %(any)s OR finished.etag = ANY (string_to_array(%(known)s, ' ')) THEN NULL
            ELSE result END AS result,
       step_started_at, created_at, updated_at, version, finished.etag AS finished_etag,
       dispatch_id,
       CASE WHEN status = 'queued' AND dispatch_id IS NULL THEN
                (SELECT reason FROM job_type_pauses p WHERE p.type = jobs.type) END AS pause_reason
  FROM jobs,
       LATERAL (SELECT CASE WHEN status IN ('succeeded', 'failed') THEN
                    'f' || %(document_version)s || '-' || md5(id::text || ':' || version)
                END AS etag) AS finished
 WHERE id = %(id)s
   AND (owner_user_id = %(user_id)s
        OR (owner_user_id IS NULL AND owner_session_id = %(session_id)s))
   AND (%(user_id)s::uuid IS NULL OR EXISTS (SELECT FROM users WHERE users.id = %(user_id)s));

-- name: list_owned_jobs
-- Nothing for a user whose account is gone, as get_owned_job.
SELECT id, type, owner_user_id, owner_session_id, status, progress, current_step, error,
       error_code, NULL::jsonb AS result, step_started_at, created_at, updated_at, version,
       NULL::text AS finished_etag, dispatch_id,
       CASE WHEN status = 'queued' AND dispatch_id IS NULL THEN
                (SELECT reason FROM job_type_pauses p WHERE p.type = jobs.type) END AS pause_reason
  FROM jobs
 WHERE (CASE WHEN %(user_id)s::uuid IS NOT NULL THEN owner_user_id = %(user_id)s
             ELSE owner_user_id IS NULL AND owner_session_id = %(session_id)s END)
   AND (%(status)s::text IS NULL OR status = %(status)s)
   AND (%(user_id)s::uuid IS NULL OR EXISTS (SELECT FROM users WHERE users.id = %(user_id)s))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: retry_failed_job
-- The owner's (%(any_owner)s false: the job must be theirs) or an operator's (true: any
-- owner's; queue_jobs/services/jobs.py retry_for_operator); so are the cancels below.
-- Back to queued at once; checkpoints stay, so the run resumes at the failed step.
-- Not a deprecated per-step call's job (input.legacyStep): only its caller had the steps
-- before it, so a worker could not resume it; the caller calls again instead.
UPDATE jobs
   SET status = 'queued', error = NULL, error_code = NULL, finished_at = NULL,
       cancel_requested_at = NULL, attempt = attempt + 1, lost_runs = 0,
       run_started_at = NULL, step_started_at = NULL, updated_at = now(),
       dispatch_id = jobs_dispatch_unless_paused(type, %(queue)s, %(task)s, id, owner_user_id,
                                                 owner_session_id, %(fair)s)
 WHERE id = %(id)s AND status = 'failed' AND NOT input ? 'legacyStep'
   AND (%(any_owner)s OR owner_user_id = %(user_id)s
        OR (owner_user_id IS NULL AND owner_session_id = %(session_id)s))
RETURNING version;

-- name: cancel_queued_job
UPDATE jobs
   SET status = 'failed', error = 'Cancelled', error_code = 'CANCELLED',
       cancel_requested_at = now(), finished_at = now(), updated_at = now()
 WHERE id = %(id)s AND status = 'queued'
   AND (%(any_owner)s OR owner_user_id = %(user_id)s
        OR (owner_user_id IS NULL AND owner_session_id = %(session_id)s))
RETURNING dispatch_id, type, version,
          (extract(epoch FROM now() - created_at) * 1000)::bigint AS elapsed_ms;

-- name: request_running_job_cancel
-- The worker sees the abort (procrastinate NOTIFY, or its own poll of this column) and
-- writes the final state; the reaper does it if the worker is gone.
UPDATE jobs
   SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now()
 WHERE id = %(id)s AND status = 'running'
   AND (%(any_owner)s OR owner_user_id = %(user_id)s
        OR (owner_user_id IS NULL AND owner_session_id = %(session_id)s))
RETURNING dispatch_id, version;

-- name: claim_job
-- The worker takes its job (jobs_claim, sql/functions/jobs_claim.sql). A worker of ours
-- claims in its fetch (fetch_and_claim_job, sql/queries/procrastinate.sql); this is for a
-- run that was not fetched so (a run started by other means).
SELECT * FROM jobs_claim(%(dispatch_id)s, %(id)s::text, %(first_steps)s::jsonb);

-- name: start_step
UPDATE jobs
   SET current_step = %(step)s, step_started_at = now(),
       progress = greatest(progress, %(progress)s), updated_at = now()
 WHERE id = %(id)s AND dispatch_id = %(dispatch_id)s AND status = 'running'
   AND cancel_requested_at IS NULL
RETURNING id;

-- name: record_failed_step
-- A step that raised (failed), or whose run was stopped or lost the job meanwhile
-- (interrupted): its record, with the LLM calls it made (already in the totals: each was
-- added as it returned). Not fenced: whichever run owns the job now, this step ran.
SELECT type, jobs_record_step(id, type, %(attempt)s, %(step)s, %(outcome)s,
                              %(duration_ms)s, %(usage)s::jsonb, %(reasks)s)
  FROM jobs
 WHERE id = %(id)s;

-- name: record_llm_call
-- One answered LLM call, written as it returns (not when its step ends, so the calls of a
-- run killed mid-step are counted too): added to the job's totals and to the day's
-- rollup. Not fenced: a call returning to a run that lost the job was paid for all the
-- same. updated_at stays: a call is not a change of the job's status document.
WITH job AS (
    UPDATE jobs
       SET llm_calls = llm_calls + 1,
           llm_tokens = llm_tokens + %(input_tokens)s + %(output_tokens)s
     WHERE id = %(id)s
    RETURNING type
)
INSERT INTO llm_usage_daily AS d (day, job_type, step, model, calls, input_tokens,
                                  output_tokens)
SELECT (now() AT TIME ZONE 'UTC')::date, type, %(step)s, %(model)s, 1, %(input_tokens)s,
       %(output_tokens)s
  FROM job
ON CONFLICT (day, job_type, step, model) DO UPDATE
   SET calls = d.calls + 1,
       input_tokens = d.input_tokens + EXCLUDED.input_tokens,
       output_tokens = d.output_tokens + EXCLUDED.output_tokens;

-- name: fail_job
-- current_step is kept: a failed job names the step that failed.
UPDATE jobs
   SET status = 'failed', error = %(error)s, error_code = %(error_code)s,
       finished_at = now(), updated_at = now()
 WHERE id = %(id)s AND dispatch_id = %(dispatch_id)s AND status IN ('queued', 'running')
RETURNING type, (extract(epoch FROM now() - created_at) * 1000)::bigint AS elapsed_ms;

-- name: redispatch_job
-- A new dispatch for an active job. A worker shutting down hands its job over
-- (lost = 0); the reaper re-dispatches the job of a dead worker (lost = 1), or a queued
-- one left with no dispatch while its type is not paused (%(dispatch_id)s NULL). A paused
-- type's job is held instead: queued, with no dispatch.
UPDATE jobs
   SET status = 'queued', lost_runs = lost_runs + %(lost)s, updated_at = now(),
       step_started_at = NULL,
       dispatch_id = jobs_dispatch_unless_paused(type, %(queue)s, %(task)s, id, owner_user_id,
                                                 owner_session_id, %(fair)s)
 WHERE id = %(id)s AND dispatch_id IS NOT DISTINCT FROM %(dispatch_id)s::bigint
   AND status IN ('queued', 'running')
RETURNING dispatch_id;

-- name: get_run_state
SELECT status, dispatch_id, cancel_requested_at IS NOT NULL AS cancel_requested,
       run_started_at
  FROM jobs
 WHERE id = %(id)s;

-- name: recent_step_durations
-- Mean and 90th percentile duration of each step over the last successful jobs of a type
-- (ETA: the mean, and the p90 for a step that overruns it). Deprecated per-step calls'
-- jobs are left out: they ran one step on input of the caller's choosing.
SELECT step.key AS step, avg(step.value::numeric)::int AS mean_ms,
       percentile_disc(0.9) WITHIN GROUP (ORDER BY step.value::numeric)::int AS p90_ms
  FROM (SELECT step_durations_ms
          FROM jobs
         WHERE type = %(type)s AND status = 'succeeded' AND NOT input ? 'legacyStep'
         ORDER BY finished_at DESC
         LIMIT %(sample)s) recent,
       jsonb_each_text(recent.step_durations_ms) AS step
 GROUP BY step.key;

-- name: active_job_counts
-- /metrics: queued and running jobs by type, and how long the one queued longest has
-- waited since it was last queued (jobs_active_idx).
SELECT type, status, count(*) AS jobs,
       extract(epoch FROM now() - min(updated_at))::float AS oldest_s
  FROM jobs
 WHERE status IN ('queued', 'running')
 GROUP BY type, status
 ORDER BY type, status;

-- name: recent_step_stats
-- /metrics: median and 95th percentile of the last hour's successful step runs.
SELECT job_type AS type, step,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50_ms,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms
  FROM job_steps
 WHERE finished_at > now() - interval '1 hour' AND outcome = 'succeeded'
 GROUP BY job_type, step
 ORDER BY job_type, step;

-- name: delete_old_finished_jobs
-- Retention (JOB_RETENTION_DAYS), in batches: finished jobs only. Their images, idempotency
-- keys and step data go with them (foreign keys); saved posts stay (their job_id is set
-- NULL, their images belong to the post); so do the organizations they made.
DELETE FROM jobs
 WHERE id = ANY (ARRAY(
     SELECT id FROM jobs
      WHERE status IN ('succeeded', 'failed')
        AND finished_at < now() - make_interval(days => %(retention_days)s)
      LIMIT %(batch)s));

-- name: listen_job_changes
-- The change feed (sql/functions/jobs_notify_change.sql), on a connection of its own.
LISTEN jobs_changed;

-- name: jobs_by_ids
-- Event streams' jobs, read again after a change: the owners were checked when each
-- stream opened (get_owned_job), and a job's owner never changes.
SELECT id, type, owner_user_id, owner_session_id, status, progress, current_step, error,
       error_code, result, step_started_at, created_at, updated_at, version, dispatch_id,
       CASE WHEN status = 'queued' AND dispatch_id IS NULL THEN
                (SELECT reason FROM job_type_pauses p WHERE p.type = jobs.type) END AS pause_reason
  FROM jobs
 WHERE id = ANY (%(ids)s);
