-- Failure rate by errorCode over the last 24 hours, per job type: the share of finished
-- jobs that failed with each code (CANCELLED is a user's choice, listed like the rest).
WITH finished AS (
    SELECT type, status, error_code
      FROM jobs
     WHERE finished_at > now() - interval '24 hours'
)
SELECT type, error_code, count(*) AS failed,
       round(count(*)::numeric / (SELECT count(*) FROM finished f WHERE f.type = x.type),
             4) AS share_of_finished
  FROM finished x
 WHERE status = 'failed'
 GROUP BY type, error_code
 ORDER BY type, failed DESC, error_code;
