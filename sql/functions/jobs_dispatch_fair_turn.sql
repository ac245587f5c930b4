-- Fair turns (FAIR_DISPATCH): the turn in which a new dispatch of the owner's starts, by
-- start-time fair queuing. jobs_dispatch_run makes it the dispatch's priority (-turn), so
-- procrastinate's fetch (priority DESC, id ASC) hands out turn after turn, each turn's
-- dispatches in dispatch order: every owner with jobs waiting starts one per turn. A
-- priority is set once and never rewritten: a claim or a finish writes nothing (0021
-- dropped the re-rank of the owner's queued dispatches per finish), and a queue position
-- stays the job's place in the fetch order.
-- The queue's current turn: its lowest 'todo' turn (the head), or the turn before it
-- while the dispatch fetched last (the highest 'doing' one) is of that turn, so that a
-- newcomer joins the turn being handed out, behind at most one job of each other owner;
-- nothing 'todo': 0, so turns start again whenever the queue empties. An owner takes the
-- current turn, or the one after its last queued dispatch (FIFO within an owner), or the
-- one after its running dispatch's but at most one past the current: a job that started
-- long ago (a long run) must not put its owner's next job behind everyone's backlog.
-- Owners are serialised by the owner's lock in create and retry; two re-dispatches of
-- one owner at the same instant may share a turn (their ids still order them).
-- Turns grow by at most one per job started while the queue is never empty; at 2^31 - 1
-- (two billion starts without the queue emptying) they stop, and the queue is FIFO until
-- it empties.
-- procrastinate's table: a procrastinate upgrade reviews this file
-- (sql/queries/procrastinate.sql lists what else).
CREATE OR REPLACE FUNCTION jobs_dispatch_fair_turn(queue text, user_id uuid, session_id text)
    RETURNS integer
    LANGUAGE sql STABLE
AS $$
    WITH queue_turns AS (
        -- procrastinate_jobs_priority_idx_v1 (partial on 'todo'): the queue's first row;
        -- the 'doing' rows through their partial worker index (one per busy slot).
        SELECT (SELECT -max(priority)::bigint FROM procrastinate_jobs
                 WHERE status = 'todo' AND queue_name = queue) AS head,
               (SELECT -min(priority)::bigint FROM procrastinate_jobs
                 WHERE status = 'doing' AND worker_id IS NOT NULL
                   AND queue_name = queue) AS fetched
    ), serving AS (
        SELECT CASE WHEN head IS NULL THEN 0
                    WHEN fetched = head - 1 THEN head - 1
                    ELSE head END AS turn
          FROM queue_turns
    ), owned AS (
        -- the owner's active jobs through the partial owner indexes (jobs_active_count)
        SELECT dispatch_id FROM jobs
         WHERE status IN ('queued', 'running') AND user_id IS NOT NULL
           AND owner_user_id = user_id
        UNION ALL
        SELECT dispatch_id FROM jobs
         WHERE status IN ('queued', 'running') AND user_id IS NULL
           AND owner_user_id IS NULL AND owner_session_id = session_id
    ), owner_turns AS (
        SELECT -min(pj.priority) FILTER (WHERE pj.status = 'todo')::bigint AS queued,
               -min(pj.priority) FILTER (WHERE pj.status = 'doing')::bigint AS running
          FROM owned JOIN procrastinate_jobs pj ON pj.id = owned.dispatch_id
         WHERE pj.queue_name = queue
    )
    SELECT least(greatest(serving.turn, owner_turns.queued + 1,
                          CASE WHEN owner_turns.running IS NOT NULL
                               THEN least(owner_turns.running, serving.turn) + 1 END),
                 2147483647)::integer
      FROM serving, owner_turns
$$;
