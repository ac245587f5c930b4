-- Recovery of jobs whose run is lost. Each candidate carries the dispatch it was seen
-- with; every write is guarded by it, so a run that comes back to life loses. The
-- reaper's statements on procrastinate's tables (lost_runs, finish_lost_dispatch) are in
-- sql/queries/procrastinate.sql.

-- name: overdue_runs
-- Runs past their deadline whose worker did not stop them (stuck or gone).
SELECT id, dispatch_id
  FROM jobs
 WHERE status = 'running'
   AND run_started_at < now() - make_interval(secs => %(timeout_s)s)
 LIMIT 100;

-- name: dead_inline_runs
-- In-request runs (deprecated synchronous calls) whose process stopped beating: a deploy
-- or a crash killed the request. Nobody can resume them (the caller is gone), so they
-- fail: CANCELLED if a cancel was asked for, else WORKER_LOST.
SELECT id, dispatch_id, cancel_requested_at IS NOT NULL AS cancel_requested
  FROM jobs
 WHERE status = 'running' AND dispatch_id < 0
   AND inline_heartbeat_at < now() - make_interval(secs => %(stalled_after_s)s)
 LIMIT 100;
