-- Throughput: jobs finished per hour over the last 24 hours, per type and outcome.
SELECT date_trunc('hour', finished_at) AS hour, type, status, count(*) AS jobs
  FROM jobs
 WHERE finished_at > now() - interval '24 hours'
 GROUP BY 1, 2, 3
 ORDER BY 1 DESC, 2, 3;
