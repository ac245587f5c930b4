-- A deleted account's tokens get 401: web processes forget the status answers they
-- remember (queue_jobs/services/live.py), whose owner checks did not read `users`.
CREATE OR REPLACE FUNCTION users_notify_deleted()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('jobs_changed', OLD.id::text || ' 0 u');
    RETURN OLD;
END
$$;
