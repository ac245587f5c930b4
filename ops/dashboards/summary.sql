-- title: Now
-- chart: summary queued,running,oldest_queued_s,failed_last_hour,live_workers
-- order: 0
-- column: queued | Queued
-- column: running | Running
-- column: oldest_queued_s | Oldest queued | seconds
-- column: failed_last_hour | Failed, last hour
-- column: live_workers | Live workers
-- The five numbers to read first: jobs queued and running, how long the job queued
-- longest has waited (since it was last queued; none when the queue is empty), jobs
-- failed in the last hour (cancels are a user's choice and not counted), and workers
-- whose heartbeat is younger than 30 s (WORKER_STALLED_AFTER_S' default). One row, however
-- big the table: the partial index of active jobs (jobs_active_idx), an index-only scan
-- of one hour of jobs_finished_idx, and the tiny procrastinate_workers table.
SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
       count(*) FILTER (WHERE status = 'running') AS running,
       extract(epoch FROM now() - min(updated_at) FILTER (WHERE status = 'queued'))::int
           AS oldest_queued_s,
       (SELECT count(*)
          FROM jobs
         WHERE finished_at > now() - interval '1 hour'
           AND status = 'failed' AND error_code IS DISTINCT FROM 'CANCELLED')
           AS failed_last_hour,
       (SELECT count(*)
          FROM procrastinate_workers
         WHERE last_heartbeat > now() - interval '30 seconds') AS live_workers
  FROM jobs
 WHERE status IN ('queued', 'running');
