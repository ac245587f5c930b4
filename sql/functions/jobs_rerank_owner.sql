-- Trigger (migration 0015) after one of an owner's active jobs finished, or a running one
-- was queued again: its queued dispatches take their ranks again (running jobs first,
-- then queued ones in dispatch order), so each waits only behind other owners' jobs of a
-- lower rank. O(the owner's active jobs) through the partial owner indexes; only the
-- owner's 'todo' procrastinate rows are touched, and only raised: a dispatch made with
-- fair dispatch off (priority 0, rank 1's priority) is never changed.
-- procrastinate's table: a procrastinate upgrade reviews this file
-- (sql/queries/procrastinate.sql lists what else).
CREATE OR REPLACE FUNCTION jobs_rerank_owner() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    WITH owned AS (
        SELECT dispatch_id, status
          FROM jobs
         WHERE status IN ('queued', 'running') AND OLD.owner_user_id IS NOT NULL
           AND owner_user_id = OLD.owner_user_id
        UNION ALL
        SELECT dispatch_id, status
          FROM jobs
         WHERE status IN ('queued', 'running') AND OLD.owner_user_id IS NULL
           AND owner_user_id IS NULL AND owner_session_id = OLD.owner_session_id
    ), ranked AS (
        SELECT dispatch_id, status,
               row_number() OVER (ORDER BY status = 'running' DESC, dispatch_id) AS rank
          FROM owned
    )
    UPDATE procrastinate_jobs pj
       SET priority = 1 - ranked.rank
      FROM ranked
     WHERE ranked.status = 'queued' AND pj.id = ranked.dispatch_id
       AND pj.status = 'todo' AND pj.priority < 1 - ranked.rank;
    RETURN NULL;
END
$$;
