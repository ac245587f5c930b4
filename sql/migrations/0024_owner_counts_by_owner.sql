-- An owner's unfinished jobs (jobs_active_count, and the owner's dispatches in
-- jobs_dispatch_fair_turn: sql/functions) are read through indexes of that owner's only,
-- whatever the planner believes of how many jobs are active. Their statements say
-- "not finished" (status NOT IN ('succeeded', 'failed'), the same rows as
-- IN ('queued', 'running'): the CHECK of jobs.status allows those four), and these indexes'
-- predicates say the same, so jobs_active_idx (all active jobs, partial on IN
-- ('queued', 'running')) cannot serve them. With that index available, statistics from a
-- table of finished jobs (active ones rare, as they are between bursts; autovacuum does
-- not analyse a large table again for a burst of a few per cent of it) made every create
-- read every active job, twice: 10,000 rows a create at 5,000 queued.
-- lock_timeout: rather fail the deploy (and run it again) than queue every status poll
-- behind a long transaction while waiting for the DROP INDEX's exclusive lock.
SET LOCAL lock_timeout = '5s';
CREATE INDEX jobs_owner_user_unfinished_idx ON jobs (owner_user_id)
    WHERE status NOT IN ('succeeded', 'failed') AND owner_user_id IS NOT NULL;
CREATE INDEX jobs_owner_session_unfinished_idx ON jobs (owner_session_id)
    WHERE status NOT IN ('succeeded', 'failed') AND owner_user_id IS NULL;
DROP INDEX jobs_active_owner_user_idx;
DROP INDEX jobs_active_owner_session_idx;
