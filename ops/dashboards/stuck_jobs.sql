-- Stuck jobs: queued for over 10 minutes (no worker takes them), or running with no
-- progress written for over 5 minutes (a step hangs, or its worker is gone and the reaper
-- is not running). The reaper should leave this list empty; anything here needs a look.
SELECT id, type, status, current_step, attempt, lost_runs, dispatch_id,
       extract(epoch FROM now() - created_at)::int AS age_s,
       extract(epoch FROM now() - updated_at)::int AS silent_s
  FROM jobs
 WHERE (status = 'queued' AND created_at < now() - interval '10 minutes')
    OR (status = 'running' AND updated_at < now() - interval '5 minutes')
 ORDER BY updated_at
 LIMIT 100;
