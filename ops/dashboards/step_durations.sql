-- title: Step durations, last 24 h
-- chart: bars p50_ms,p95_ms
-- order: 60
-- scale: log
-- column: label | Type · step
-- column: type | Job type
-- column: runs | Runs
-- column: p50_ms | Median | ms
-- column: p95_ms | 95th percentile | ms
-- Median and 95th percentile of each step's successful runs per job type over the last
-- 24 hours (what the ETA is made of). An index-only scan of one day of job_steps.
SELECT job_type || ' · ' || step AS label, job_type AS type, step, count(*) AS runs,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50_ms,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms
  FROM job_steps
 WHERE finished_at > now() - interval '24 hours' AND outcome = 'succeeded'
 GROUP BY job_type, step
 ORDER BY job_type, step;
