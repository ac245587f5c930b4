-- Every statement of ours on procrastinate's tables (procrastinate_jobs, _workers,
-- _events, _periodic_defers) or calling its SQL functions, in one file: with the files
-- below, what a procrastinate upgrade (README: upgrading procrastinate) must review.
--   sql/migrations/0001_procrastinate_3_10_0.sql: its schema, vendored (its later
--     migrations are copied as new numbered files).
--   sql/functions/jobs_dispatch_run.sql: the one stored function of ours that calls
--     procrastinate's (procrastinate_defer_jobs_v1, with its type
--     procrastinate_job_to_defer_v1). It reaches procrastinate for jobs_create
--     (sql/functions/jobs_create.sql) and the queries retry_failed_job and redispatch_job
--     (sql/queries/jobs.sql) through jobs_dispatch_unless_paused.sql, and for a resume
--     through jobs_dispatch_held.sql; none of them calls anything of procrastinate's
--     itself. Migration 0003 holds its first version, history only.
--   sql/functions/jobs_dispatch_fair_turn.sql: a new dispatch's fair turn (its priority),
--     read from the queue's 'todo' and 'doing' rows' priorities and the owner's.
--   sql/migrations/0023_queue_head_by_index.sql: an index of ours on procrastinate_jobs
--     (jobs_queue_todo_order_idx: a queue's 'todo' rows in fetch order), for the fair
--     turn's head and the queue_positions counts below.
--   ops/dashboards/live_workers.sql: the ops page's workers (procrastinate_workers,
--     procrastinate_jobs); a dashboard is a file of its own, not a named query.
--   ops/dashboards/summary.sql: the ops page's summary line counts live workers
--     (procrastinate_workers' last_heartbeat).
-- procrastinate's Python API is used in queue_jobs/worker/ (app.py, tasks.py) only.

-- name: cancel_dispatch
-- Cancelling a job (web side).
-- abort=true: a todo procrastinate job becomes cancelled, a doing one gets abort_requested.
SELECT procrastinate_cancel_job_v1(%(dispatch_id)s, true, false);

-- name: fetch_and_claim_job
-- A worker's fetch (queue_jobs/worker/resilient.py): procrastinate's (its fetch_job
-- query, procrastinate_fetch_job_v2) and, when the dispatch is a run of ours
-- (%(task)s), the claim of its job (jobs_claim, as claim_job) in the same statement, so
-- the jobs row is 'running' as the dispatch is 'doing': one round trip and one transaction
-- for both. jobs_claim is called after the fetch (the lateral join) and reads with a
-- snapshot of its own, newer than this statement's: it sees the job of whatever dispatch
-- the fetch found. The claim columns are NULL when nothing was fetched, when the dispatch
-- is another task's, or when it is no longer its job's current one (superseded,
-- cancelled, finished): the run then ends as one whose claim_job found nothing.
WITH fetched AS MATERIALIZED (
    SELECT id, status, task_name, priority, lock, queueing_lock, args, scheduled_at,
           queue_name, attempts, worker_id
      FROM procrastinate_fetch_job_v2(%(queues)s::varchar[], %(worker_id)s)
)
SELECT fetched.*, claimed.id AS claimed_id, claimed.type AS claimed_type,
       claimed.input AS claimed_input, claimed.step_outputs AS claimed_step_outputs,
       claimed.step_parts AS claimed_step_parts, claimed.progress AS claimed_progress,
       claimed.attempt AS claimed_attempt, claimed.current_step AS claimed_current_step
  FROM fetched
  LEFT JOIN LATERAL jobs_claim(
      CASE WHEN fetched.task_name = %(task)s THEN fetched.id END, fetched.args ->> 'job_id',
      %(first_steps)s::jsonb) AS claimed ON true;

-- name: save_steps
-- Finished steps' outputs and durations on the job, and their step records with the LLM
-- calls each made (jobs_record_steps; the calls were added to the job's totals as they
-- returned, record_llm_call): one statement, so all of it commits or none does. With a
-- next_step, that step starts here too (no separate start_step write). With a result,
-- the job succeeds here too: the run's last steps and its result are its last write.
-- A finished step's parts (step_parts) go: its output holds what they were for.
-- %(steps)s: [{step, output, duration_ms, usage}], in the order they ran.
-- With %(finish_dispatch)s (a worker's run, with its result), procrastinate's job ends
-- here too, as its worker would end it (procrastinate_finish_job_v1: 'succeeded', its
-- events and triggers; %(delete_dispatch)s: the worker's delete_jobs for a success), and
-- only if the job succeeded here: a fenced-out run ends nothing. dispatch_finished says
-- whether it did (the worker then skips its own finish of that job).
WITH new AS (
    SELECT coalesce(jsonb_object_agg(s->>'step', s->'output'), '{}') AS outputs,
           coalesce(jsonb_object_agg(s->>'step', s->'duration_ms'), '{}') AS durations,
           coalesce(array_agg(s->>'step'), '{}') AS steps
      FROM jsonb_array_elements(%(steps)s::jsonb) AS s
), job AS (
    UPDATE jobs
       SET step_outputs = step_outputs || new.outputs,
           step_durations_ms = step_durations_ms || new.durations,
           step_parts = step_parts - new.steps,
           current_step = coalesce(%(next_step)s::text, current_step),
           step_started_at = CASE WHEN %(next_step)s::text IS NULL THEN step_started_at
                                  ELSE now() END,
           progress = CASE WHEN %(result)s::jsonb IS NULL
                           THEN greatest(progress, %(progress)s) ELSE 100 END,
           status = CASE WHEN %(result)s::jsonb IS NULL THEN status ELSE 'succeeded' END,
           -- durationMs: the time the steps took, summed over every run that did one.
           result = CASE WHEN %(result)s::jsonb IS NULL THEN result
                         ELSE jsonb_set(%(result)s::jsonb, '{metadata,durationMs}', to_jsonb(
                             (SELECT coalesce(sum(value::bigint), 0)
                                FROM jsonb_each_text(step_durations_ms || new.durations))))
                    END,
           finished_at = CASE WHEN %(result)s::jsonb IS NULL THEN finished_at ELSE now() END,
           updated_at = now()
      FROM new
     WHERE id = %(id)s AND dispatch_id = %(dispatch_id)s AND status = 'running'
       AND cancel_requested_at IS NULL
    RETURNING id, type, created_at
), dispatch AS MATERIALIZED (
    SELECT pj.id FROM procrastinate_jobs pj
     WHERE %(finish_dispatch)s::boolean AND %(result)s::jsonb IS NOT NULL
       AND pj.id = %(dispatch_id)s AND pj.status IN ('todo', 'doing')
       AND EXISTS (SELECT FROM job)
       FOR UPDATE OF pj
)
SELECT job.type, (extract(epoch FROM now() - job.created_at) * 1000)::bigint AS elapsed_ms,
       EXISTS (SELECT FROM dispatch,
                      LATERAL procrastinate_finish_job_v1(dispatch.id, 'succeeded',
                                                          %(delete_dispatch)s::boolean) AS f)
           AS dispatch_finished
  FROM job,
       LATERAL jobs_record_steps(job.id, job.type, %(attempt)s, 'succeeded',
                                 %(steps)s::jsonb) AS recorded;

-- name: finish_dispatch
-- A worker's own finish of a dispatch it fetched and claimed (queue_jobs/worker/
-- resilient.py): procrastinate's finish_job (procrastinate_finish_job_v1: %(status)s, its
-- events, %(delete)s as its delete_jobs says), unless the dispatch has ended already:
-- save_steps may have ended it with the run's success while the worker did not learn it
-- (the connection lost after that commit, the watchdog's timeout racing the success).
-- procrastinate's own query would raise then. Answers whether it ended it.
SELECT EXISTS (SELECT FROM (SELECT id FROM procrastinate_jobs
                             WHERE id = %(dispatch_id)s AND status IN ('todo', 'doing')
                               FOR UPDATE) AS dispatch,
                      LATERAL procrastinate_finish_job_v1(dispatch.id,
                                                          %(status)s::procrastinate_job_status,
                                                          %(delete)s::boolean) AS f)
           AS finished;

-- name: queue_positions
-- Status documents: each queued dispatch's place in the line, 1 + the 'todo' dispatches
-- of its queue that procrastinate_fetch_job_v2 takes first (priority DESC, id ASC). Two
-- ranges of jobs_queue_todo_order_idx (the queue's 'todo' rows in that order, migration
-- 0023) per dispatch, not one OR, so each is an index range scan. A dispatch no longer
-- 'todo' (being claimed) is 1.
SELECT d.id AS dispatch_id,
       1 + coalesce((SELECT count(*) FROM procrastinate_jobs o
                      WHERE o.status = 'todo' AND o.queue_name = %(queue)s
                        AND o.priority > me.priority)
                    + (SELECT count(*) FROM procrastinate_jobs o
                        WHERE o.status = 'todo' AND o.queue_name = %(queue)s
                          AND o.priority = me.priority AND o.id < me.id), 0) AS position
  FROM unnest(%(dispatch_ids)s::bigint[]) AS d(id)
  LEFT JOIN procrastinate_jobs me ON me.id = d.id AND me.status = 'todo';

-- name: queue_positions_ranked
-- queue_positions for many dispatches at once (an event-streaming process re-reading all
-- its queued jobs after the queue moved): the whole line numbered in one pass of
-- jobs_queue_todo_order_idx (migration 0023), instead of two counts per dispatch. A
-- dispatch not 'todo' any more (being claimed) is 1, as there.
SELECT d.id AS dispatch_id, coalesce(ranked.position, 1) AS position
  FROM unnest(%(dispatch_ids)s::bigint[]) AS d(id)
  LEFT JOIN (SELECT id, row_number() OVER (ORDER BY priority DESC, id) AS position
               FROM procrastinate_jobs
              WHERE status = 'todo' AND queue_name = %(queue)s) ranked ON ranked.id = d.id;

-- name: queue_pace
-- The estimate of a queued job's wait (services.eta.queue_wait_s), cached per process:
-- runs started by workers in the last %(window_s)s seconds (jobs_run_started_idx; negative
-- dispatch ids are in-request runs, which take no worker slot); live workers (a heartbeat
-- younger than %(stalled_after_s)s) and the dispatches of our queue they are running (the
-- busy slots); the mean run time of the last successful worker runs of the last hour
-- (a range of jobs_finished_idx, however long the history).
SELECT (SELECT count(*) FROM jobs
         WHERE run_started_at > now() - make_interval(secs => %(window_s)s)
           AND dispatch_id > 0) AS recent_starts,
       (SELECT count(*) FROM procrastinate_workers
         WHERE last_heartbeat > now() - make_interval(secs => %(stalled_after_s)s))
           AS live_workers,
       (SELECT count(*) FROM procrastinate_jobs pj
          JOIN procrastinate_workers w ON w.id = pj.worker_id
         WHERE pj.status = 'doing' AND pj.queue_name = %(queue)s
           AND w.last_heartbeat > now() - make_interval(secs => %(stalled_after_s)s))
           AS busy_slots,
       (SELECT avg(extract(epoch FROM finished_at - run_started_at))::float8
          FROM (SELECT finished_at, run_started_at FROM jobs
                 WHERE finished_at > now() - interval '1 hour' AND status = 'succeeded'
                   AND run_started_at IS NOT NULL AND dispatch_id > 0
                 ORDER BY finished_at DESC
                 LIMIT %(sample)s) recent) AS mean_run_s;

-- name: hold_queued_dispatches
-- A pause (queue_jobs/services/pauses.py), under the type's lock: the type's queued jobs
-- whose dispatch no worker has taken yet lose it (their 'todo' procrastinate rows are
-- deleted, jobs.dispatch_id cleared), so none starts until a resume. A dispatch a worker
-- is fetching at the same moment is locked by its fetch (FOR UPDATE SKIP LOCKED): the
-- delete waits for it, finds it 'doing' and leaves it, and its job runs (claim_job's fence
-- is the dispatch it keeps). Answers the jobs it held back. The UPDATE bumps each job's
-- version and NOTIFYs (a dispatch change): live status shows the pause at once.
WITH taken AS (
    DELETE FROM procrastinate_jobs pj
     USING jobs j
     WHERE j.type = %(type)s AND j.status = 'queued' AND pj.id = j.dispatch_id
       AND pj.status = 'todo'
    RETURNING pj.id
)
UPDATE jobs SET dispatch_id = NULL
 WHERE dispatch_id IN (SELECT id FROM taken) AND status = 'queued'
RETURNING id;

-- name: lost_runs
-- The reaper (its other queries: sql/queries/reaper.sql). Running or queued jobs whose
-- procrastinate job is gone or finished without us (crash after procrastinate gave up),
-- or is 'doing' on a worker that has been silent for %(stalled_after_s)s of time in which
-- the database was up: silence is counted from the later of its last heartbeat, the
-- server's start (a restart is an outage) and the reaper's own worker's reconnection
-- (%(up_for_s)s ago; NULL if it never lost the database), so a worker living through an
-- outage has the time to reconnect and beat.
-- charged: whether this loss counts against the job (lost_runs, WORKER_LOST): only for a
-- run that had started and whose worker fell silent while the database was up. A worker
-- last heard of before the database's current up-time went away during an outage (a
-- shutdown that could not hand its runs back, or a death that is no fault of the job).
-- A paused type's held jobs (queued, no dispatch) are not lost: they wait for a resume.
-- A queued job with no dispatch whose type is not paused (its pause row deleted by hand)
-- is, and is dispatched again.
SELECT j.id, j.dispatch_id, pj.status::text AS dispatch_status,
       j.cancel_requested_at IS NOT NULL AS cancel_requested, j.lost_runs,
       (j.status = 'running'
        AND (pj.status IS DISTINCT FROM 'doing' OR w.id IS NULL
             OR w.last_heartbeat >= up.since)) AS charged
  FROM jobs j
  CROSS JOIN (SELECT greatest(pg_postmaster_start_time(),
                              now() - make_interval(secs => %(up_for_s)s::float8)) AS since) up
  LEFT JOIN procrastinate_jobs pj ON pj.id = j.dispatch_id
  LEFT JOIN procrastinate_workers w ON w.id = pj.worker_id
 WHERE j.status IN ('queued', 'running')
   AND coalesce(j.dispatch_id, 0) >= 0  -- in-request runs (negative ids): dead_inline_runs
   AND NOT (j.status = 'queued' AND j.dispatch_id IS NULL
            AND EXISTS (SELECT FROM job_type_pauses p WHERE p.type = j.type))
   AND (pj.id IS NULL
        OR (pj.status NOT IN ('todo', 'doing') AND j.updated_at < now() - interval '5 seconds')
        OR (pj.status = 'doing'
            AND (w.id IS NULL
                 OR greatest(w.last_heartbeat, up.since)
                    < now() - make_interval(secs => %(stalled_after_s)s))))
 LIMIT 100;

-- name: finish_lost_dispatch
-- Release the procrastinate row of a dead run (it keeps its lock otherwise).
UPDATE procrastinate_jobs SET status = 'failed', abort_requested = false
 WHERE id = %(dispatch_id)s AND status IN ('todo', 'doing');

-- name: prune_lost_workers
-- The reaper, after its recoveries: rows of workers silent as lost_runs counts silence,
-- and no longer holding a 'doing' dispatch (the reaper must see those first: a row's
-- heartbeat is what tells it a loss from an outage). Replaces procrastinate's own pruning
-- at worker start (prune_stalled_workers), which after a restart would delete the rows of
-- live workers still reconnecting.
DELETE FROM procrastinate_workers w
 WHERE greatest(w.last_heartbeat, pg_postmaster_start_time(),
                now() - make_interval(secs => %(up_for_s)s::float8))
       < now() - make_interval(secs => %(stalled_after_s)s)
   AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs pj
                    WHERE pj.worker_id = w.id AND pj.status = 'doing');

-- name: worker_heartbeat_age
-- A worker's /healthz: how old its heartbeat is, by the database's clock (no skew).
SELECT extract(epoch FROM now() - last_heartbeat)::float8 AS age_s
  FROM procrastinate_workers
 WHERE id = %(worker_id)s;

-- name: delete_finished_dispatches
-- Housekeeping (the hourly sweep): procrastinate's own rows of dispatches that ended
-- (failed, cancelled, aborted; the successful ones it deletes itself) with no event in the
-- last %(keep_hours)s hours. Our jobs table keeps the history; these only slow worker
-- start-up (procrastinate #1454).
-- Their events go with them (ON DELETE CASCADE). The row a periodic task's last defer
-- points at is left for procrastinate to replace. The status is checked again on delete:
-- a row retried in procrastinate's own tools meanwhile stays.
DELETE FROM procrastinate_jobs
 WHERE status IN ('succeeded', 'failed', 'cancelled', 'aborted')
   AND id = ANY (ARRAY(
     SELECT pj.id FROM procrastinate_jobs pj
      WHERE pj.status IN ('succeeded', 'failed', 'cancelled', 'aborted')
        AND NOT EXISTS (SELECT 1 FROM procrastinate_events e
                         WHERE e.job_id = pj.id
                           AND e.at > now() - make_interval(hours => %(keep_hours)s))
        AND NOT EXISTS (SELECT 1 FROM procrastinate_periodic_defers d
                         WHERE d.job_id = pj.id)
      LIMIT %(batch)s));

-- name: scrape_capacity
-- /metrics, at scrape time (services.monitoring.scrape_stats): live workers (a heartbeat
-- younger than %(stalled_after_s)s; a tiny table) and the server's client connections
-- against max_connections (pg_stat_activity: the server's backend list in shared memory,
-- no table read; every database and role, as max_connections counts them).
SELECT (SELECT count(*) FROM procrastinate_workers
         WHERE last_heartbeat > now() - make_interval(secs => %(stalled_after_s)s))
           AS live_workers,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')
           AS connections,
       current_setting('max_connections')::int AS max_connections;

-- name: ops_job_dispatches
-- A job's page (queue_jobs/services/ops_jobs.py): procrastinate's rows of the job's
-- dispatches (their args name our job), with their events, oldest first. They exist
-- until they are deleted: a successful one by procrastinate as it ends, the others by
-- housekeeping a day later (delete_finished_dispatches). procrastinate_jobs has no index
-- on args: this scans it, which those deletions keep to the active dispatches and a day
-- of ended ones; a page is one read, not a poll.
SELECT pj.id, pj.status::text AS status, pj.queue_name, pj.priority, pj.attempts,
       pj.worker_id, pj.abort_requested,
       coalesce((SELECT jsonb_agg(jsonb_build_object('type', e.type::text, 'at', e.at)
                                  ORDER BY e.at, e.id)
                   FROM procrastinate_events e WHERE e.job_id = pj.id), '[]') AS events
  FROM procrastinate_jobs pj
 WHERE pj.args ->> 'job_id' = %(id)s::text
 ORDER BY pj.id;
