-- title: Jobs per minute, last hour
-- chart: time-series created,started,finished
-- order: 30
-- column: time | Minute | time
-- column: created | Created
-- column: started | Started
-- column: finished | Finished
-- Jobs created, runs started and jobs finished in each minute of the last hour, every
-- minute listed (zero when idle). "started" counts each job's latest run (a job resumed
-- after a retry or a hand-over counts when it last started). Three index range scans of
-- one hour each.
WITH minutes AS (
    SELECT generate_series(date_trunc('minute', now()) - interval '59 minutes',
                           date_trunc('minute', now()), interval '1 minute') AS time
), created AS (
    SELECT date_trunc('minute', created_at) AS time, count(*) AS n
      FROM jobs WHERE created_at >= date_trunc('minute', now()) - interval '59 minutes'
     GROUP BY 1
), started AS (
    SELECT date_trunc('minute', run_started_at) AS time, count(*) AS n
      FROM jobs WHERE run_started_at >= date_trunc('minute', now()) - interval '59 minutes'
     GROUP BY 1
), finished AS (
    SELECT date_trunc('minute', finished_at) AS time, count(*) AS n
      FROM jobs WHERE finished_at >= date_trunc('minute', now()) - interval '59 minutes'
     GROUP BY 1
)
SELECT minutes.time,
       coalesce(created.n, 0) AS created,
       coalesce(started.n, 0) AS started,
       coalesce(finished.n, 0) AS finished
  FROM minutes
  LEFT JOIN created USING (time)
  LEFT JOIN started USING (time)
  LEFT JOIN finished USING (time)
 ORDER BY minutes.time;
