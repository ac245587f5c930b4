-- Serialises transactions that lock the same key, until they end (outside a transaction:
-- until the statement ends). Two creates of one owner cannot both pass the active-job
-- limit or both use one idempotency key; parallel guesses at one password are counted
-- one after the other.
CREATE OR REPLACE FUNCTION lock_key(key text) RETURNS void
    LANGUAGE sql
AS $$
    SELECT pg_advisory_xact_lock(hashtextextended(key, 0))
$$;
