-- title: Queue depth and oldest queued job
-- chart: table
-- order: 10
-- column: type | Job type
-- column: oldest_queued_s | Oldest queued | seconds
-- What is waiting and running now, per job type, and how long the job queued longest has
-- waited (since it was last queued: a retried or handed-over job waits from then). Reads
-- only the partial index of active jobs (jobs_active_idx).
SELECT type,
       count(*) FILTER (WHERE status = 'queued')  AS queued,
       count(*) FILTER (WHERE status = 'running') AS running,
       coalesce(extract(epoch FROM now() - min(updated_at) FILTER (WHERE status = 'queued')),
                0)::int AS oldest_queued_s
  FROM jobs
 WHERE status IN ('queued', 'running')
 GROUP BY type
 ORDER BY type;
