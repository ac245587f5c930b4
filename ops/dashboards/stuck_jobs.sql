-- title: Stuck jobs
-- chart: table
-- order: 50
-- column: id | Job
-- column: type | Job type
-- column: current_step | Step
-- column: lost_runs | Lost runs
-- column: dispatch_id | Dispatch
-- column: age_s | Created | ago
-- column: silent_s | Last write | ago
-- Queued for over 10 minutes (no worker takes them; counted from when it was last
-- queued), or running with no progress written for over 5 minutes (a step hangs, or its
-- worker is gone and the reaper is not running). The reaper should keep this empty;
-- anything here needs a look. Reads jobs_active_idx.
SELECT id, type, status, current_step, attempt, lost_runs, dispatch_id,
       extract(epoch FROM now() - created_at)::int AS age_s,
       extract(epoch FROM now() - updated_at)::int AS silent_s
  FROM jobs
 WHERE (status = 'queued' AND updated_at < now() - interval '10 minutes')
    OR (status = 'running' AND updated_at < now() - interval '5 minutes')
 ORDER BY updated_at
 LIMIT 100;
