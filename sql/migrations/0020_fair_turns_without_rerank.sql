-- Fair turns without a re-rank per finish: a dispatch's priority is minus its owner's
-- turn (sql/functions/jobs_dispatch_fair_turn.sql, start-time fair queuing), set once
-- when it is made and never rewritten. The trigger of 0015 re-ranked all of an owner's
-- queued dispatches after each finish (an update of procrastinate_jobs per queued job,
-- never HOT: priority is in procrastinate's fetch index); it goes, with its functions.
-- jobs_dispatch_run's and jobs_dispatch_held's new bodies (no re-rank) are in their
-- files, applied in this transaction; the old jobs_dispatch_held names jobs_rerank only
-- when it runs, and nothing runs it before its file replaces it.
-- Dispatches made before keep their rank's priority (1 - rank: 0 down to about -19),
-- which read as turns are close to the ones their owners would take now.
SET LOCAL lock_timeout = '5s';

DROP TRIGGER jobs_rerank_owner ON jobs;
DROP FUNCTION jobs_rerank_owner();
-- IF EXISTS: its file made it, so a database migrated from empty has none here yet.
DROP FUNCTION IF EXISTS jobs_rerank(uuid, text);
