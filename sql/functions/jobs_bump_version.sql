-- jobs.version: one more for every write that can change the job's status document (the
-- trigger's WHEN lists the columns). Per row it only grows, whatever the order in which
-- transactions started (updated_at is the transaction's start time, so it need not): the
-- change feed (jobs_notify_change) and the ETags of finished jobs use it.
CREATE OR REPLACE FUNCTION jobs_bump_version()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END
$$;
