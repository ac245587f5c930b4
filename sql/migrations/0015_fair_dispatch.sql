-- Fair turns per owner (FAIR_DISPATCH): a dispatch's procrastinate priority is 1 - its
-- rank among its owner's active jobs (jobs_dispatch_run), and a trigger moves an owner's
-- queued dispatches up a rank when one of its active jobs stops being active or running
-- (jobs_rerank_owner).
-- 1. jobs_dispatch_run and jobs_create take the owner and the switch: their old
--    signatures go (sql/functions/README.md: changing a signature); the files create the
--    new ones in this transaction.
-- 2. The trigger needs its function to exist when it is created, and the files are
--    applied after the migrations: a placeholder body here, which
--    sql/functions/jobs_rerank_owner.sql replaces in the same transaction.
SET LOCAL lock_timeout = '5s';

DROP FUNCTION jobs_create(uuid, text, uuid, text, jsonb, text, integer, text, integer,
                          integer, text, text, boolean);
DROP FUNCTION jobs_dispatch_run(text, text, uuid);

CREATE FUNCTION jobs_rerank_owner() RETURNS trigger LANGUAGE plpgsql
AS $$ BEGIN RETURN NULL; END $$;

-- Only the changes that can shift an owner's ranks: an active job finishing (succeeded,
-- failed, cancelled, reaped) or a running one queued again (handed back, re-dispatched).
-- A claim (queued -> running) keeps every rank: running ones rank first.
CREATE TRIGGER jobs_rerank_owner AFTER UPDATE OF status ON jobs
    FOR EACH ROW
    WHEN ((OLD.status IN ('queued', 'running') AND NEW.status NOT IN ('queued', 'running'))
          OR (OLD.status = 'running' AND NEW.status = 'queued'))
    EXECUTE FUNCTION jobs_rerank_owner();
