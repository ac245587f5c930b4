-- Step durations of jobs that succeeded in the last 24 hours: count, mean, median and
-- 95th percentile per type and step (what the ETA is made of).
SELECT jobs.type, step.key AS step, count(*) AS runs,
       round(avg(step.value::numeric))::int AS mean_ms,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY step.value::int) AS p50_ms,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY step.value::int) AS p95_ms
  FROM jobs, jsonb_each_text(jobs.step_durations_ms) AS step
 WHERE jobs.status = 'succeeded' AND jobs.finished_at > now() - interval '24 hours'
 GROUP BY jobs.type, step.key
 ORDER BY jobs.type, step.key;
