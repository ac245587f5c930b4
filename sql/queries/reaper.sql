-- Recovery of jobs whose run is lost. Each candidate carries the dispatch it was seen
-- with; every write below is guarded by it, so a run that comes back to life loses.

-- name: lost_runs
-- Running or queued jobs whose procrastinate job is gone or finished without us
-- (crash after procrastinate gave up), or is 'doing' on a worker whose heartbeat stopped.
SELECT j.id, j.dispatch_id, pj.status::text AS dispatch_status,
       j.cancel_requested_at IS NOT NULL AS cancel_requested, j.lost_runs
  FROM jobs j
  LEFT JOIN procrastinate_jobs pj ON pj.id = j.dispatch_id
  LEFT JOIN procrastinate_workers w ON w.id = pj.worker_id
 WHERE j.status IN ('queued', 'running')
   AND coalesce(j.dispatch_id, 0) >= 0  -- in-request runs (negative ids): see below
   AND (pj.id IS NULL
        OR (pj.status NOT IN ('todo', 'doing') AND j.updated_at < now() - interval '5 seconds')
        OR (pj.status = 'doing'
            AND (w.id IS NULL
                 OR w.last_heartbeat < now() - make_interval(secs => %(stalled_after_s)s))))
 LIMIT 100;

-- name: finish_lost_dispatch
-- Release the procrastinate row of a dead run (it keeps its lock otherwise).
UPDATE procrastinate_jobs SET status = 'failed', abort_requested = false
 WHERE id = %(dispatch_id)s AND status IN ('todo', 'doing');

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

-- name: worker_heartbeat_age
-- A worker's /healthz: how old its heartbeat is, by the database's clock (no skew).
SELECT extract(epoch FROM now() - last_heartbeat)::float8 AS age_s
  FROM procrastinate_workers
 WHERE id = %(worker_id)s;
