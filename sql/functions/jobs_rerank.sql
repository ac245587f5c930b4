-- An owner's queued dispatches take their ranks again (running jobs first, then queued
-- ones in dispatch order), so each waits only behind other owners' jobs of a lower rank:
-- after one of the owner's active jobs ended (the trigger jobs_rerank_owner), or after a
-- resume dispatched its held jobs (jobs_dispatch_held). owner_user_id, else the
-- anonymous owner_session_id. O(the owner's active jobs) through the partial owner
-- indexes; only the owner's 'todo' procrastinate rows are touched, and only raised: a
-- dispatch made with fair dispatch off (priority 0, rank 1's priority) is never changed;
-- held jobs (no dispatch) rank last and touch nothing.
-- procrastinate's table: a procrastinate upgrade reviews this file
-- (sql/queries/procrastinate.sql lists what else).
CREATE OR REPLACE FUNCTION jobs_rerank(owner_user_id uuid, owner_session_id text)
    RETURNS void
    LANGUAGE sql
AS $$
    WITH owned AS (
        SELECT dispatch_id, status
          FROM jobs
         WHERE status IN ('queued', 'running') AND jobs_rerank.owner_user_id IS NOT NULL
           AND jobs.owner_user_id = jobs_rerank.owner_user_id
        UNION ALL
        SELECT dispatch_id, status
          FROM jobs
         WHERE status IN ('queued', 'running') AND jobs_rerank.owner_user_id IS NULL
           AND jobs.owner_user_id IS NULL
           AND jobs.owner_session_id = jobs_rerank.owner_session_id
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
$$;
