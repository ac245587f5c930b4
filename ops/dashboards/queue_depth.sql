-- Queue depth: what is waiting and running now, per job type, and how long the oldest
-- queued job has waited. Plain SELECTs on partial indexes: safe to run every few seconds.
SELECT type,
       count(*) FILTER (WHERE status = 'queued')  AS queued,
       count(*) FILTER (WHERE status = 'running') AS running,
       coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'queued')),
                0)::int AS oldest_queued_s
  FROM jobs
 WHERE status IN ('queued', 'running')
 GROUP BY type
 ORDER BY type;
