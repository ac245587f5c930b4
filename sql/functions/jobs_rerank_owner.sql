-- Trigger (migration 0015) after one of an owner's active jobs finished, or a running one
-- was queued again: the owner's queued dispatches take their ranks again (jobs_rerank).
CREATE OR REPLACE FUNCTION jobs_rerank_owner() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM jobs_rerank(OLD.owner_user_id, OLD.owner_session_id);
    RETURN NULL;
END
$$;
