-- The change feed of live status: `NOTIFY jobs_changed, '<job id> <version> <q|->'`,
-- delivered with the commit. `q`: the job entered or left the queue or its dispatch
-- changed (inserted, a status change, re-dispatched, deleted while active), so other
-- queued jobs' positions may have moved too. A deleted job's version is 0.
-- Web processes listen (queue_jobs/services/live.py): one connection each, fanned out to
-- their event streams and remembered for status polls answered from memory.
CREATE OR REPLACE FUNCTION jobs_notify_change()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('jobs_changed', OLD.id::text || ' 0 '
                          || CASE WHEN OLD.status IN ('queued', 'running') THEN 'q' ELSE '-' END);
        RETURN OLD;
    END IF;
    PERFORM pg_notify('jobs_changed', NEW.id::text || ' ' || NEW.version || ' '
                      || CASE WHEN TG_OP = 'INSERT' OR OLD.status <> NEW.status
                                   OR OLD.dispatch_id IS DISTINCT FROM NEW.dispatch_id
                              THEN 'q' ELSE '-' END);
    RETURN NEW;
END
$$;
