-- An owner's queued and running jobs (a user's, else an anonymous session's), through
-- the owner's own index: "not finished", as its predicate says (migration 0024). No
-- sequential scan: planned while the table was nearly empty, one read the whole table at
-- every create of the burst that followed.
CREATE OR REPLACE FUNCTION jobs_active_count(user_id uuid, session_id text) RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET enable_seqscan = off
AS $$
BEGIN
    IF user_id IS NOT NULL THEN
        RETURN (SELECT count(*) FROM jobs
                 WHERE status NOT IN ('succeeded', 'failed') AND owner_user_id = user_id);
    END IF;
    RETURN (SELECT count(*) FROM jobs
             WHERE status NOT IN ('succeeded', 'failed') AND owner_user_id IS NULL
               AND owner_session_id = session_id);
END
$$;
