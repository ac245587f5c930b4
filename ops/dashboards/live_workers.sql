-- title: Workers
-- chart: table
-- order: 20
-- column: worker_id | Worker
-- column: heartbeat_age_s | Last heartbeat | ago
-- column: alive | Alive
-- column: running_jobs | Running jobs
-- column: running_maintenance | Running maintenance tasks
-- Every procrastinate worker registered now, the age of its heartbeat (beats every
-- WORKER_HEARTBEAT_S, 10 s by default) and the jobs it is running. A worker silent for
-- longer than WORKER_STALLED_AFTER_S (30 s by default) is lost: the reaper re-dispatches
-- its jobs. A tiny table, joined through procrastinate's partial index of doing jobs.
SELECT w.id AS worker_id,
       extract(epoch FROM now() - w.last_heartbeat)::int AS heartbeat_age_s,
       w.last_heartbeat > now() - interval '30 seconds' AS alive,
       count(pj.id) FILTER (WHERE pj.queue_name = 'jobs') AS running_jobs,
       count(pj.id) FILTER (WHERE pj.queue_name <> 'jobs') AS running_maintenance
  FROM procrastinate_workers w
  LEFT JOIN procrastinate_jobs pj ON pj.worker_id = w.id AND pj.status = 'doing'
 GROUP BY w.id, w.last_heartbeat
 ORDER BY w.id;
