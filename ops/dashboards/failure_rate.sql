-- title: Failures by errorCode, last 24 h
-- chart: bars failed
-- order: 40
-- column: label | Type · errorCode
-- column: type | Job type
-- column: error_code | errorCode
-- column: failed | Failed
-- column: share_of_finished | Share of finished | percent
-- Per job type, the jobs that failed with each errorCode in the last 24 hours and their
-- share of all jobs finished (CANCELLED is a user's choice, listed like the rest).
-- An index-only scan of one day of jobs_finished_idx.
WITH finished AS (
    SELECT type, status, error_code
      FROM jobs
     WHERE finished_at > now() - interval '24 hours'
)
SELECT type || ' · ' || error_code AS label, type, error_code, count(*) AS failed,
       round(count(*)::numeric / (SELECT count(*) FROM finished f WHERE f.type = x.type),
             4) AS share_of_finished
  FROM finished x
 WHERE status = 'failed'
 GROUP BY type, error_code
 ORDER BY type, failed DESC, error_code;
