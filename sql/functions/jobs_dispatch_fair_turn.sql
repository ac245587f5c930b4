-- Fair turns (FAIR_DISPATCH): the turn in which a new dispatch of the owner's starts, by
-- start-time fair queuing. jobs_dispatch_run makes it the dispatch's priority (-turn), so
-- procrastinate's fetch (priority DESC, id ASC) hands out turn after turn, each turn's
-- dispatches in dispatch order: every owner with jobs waiting starts one per turn. A
-- priority is set once and never rewritten: a claim or a finish writes nothing (0020
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
-- PL/pgSQL, not SQL: its statements' plans are kept for the session (a SQL function's
-- are made again at every call), and each owner's case has its own, on its partial index.
-- No sequential scan (every statement here has its index): plans made while the queue was
-- nearly empty, as a web process makes them at its first creates, otherwise scanned the
-- whole queue at every create of the burst that followed (tests/integration/
-- test_fair_dispatch.py counts the rows read).
-- procrastinate's table: a procrastinate upgrade reviews this file
-- (sql/queries/procrastinate.sql lists what else).
CREATE OR REPLACE FUNCTION jobs_dispatch_fair_turn(queue text, user_id uuid, session_id text)
    RETURNS integer
    LANGUAGE plpgsql STABLE
    SET enable_seqscan = off
AS $$
DECLARE
    head bigint;     -- the queue's lowest 'todo' turn
    fetched bigint;  -- the highest 'doing' one: the turn of the dispatch fetched last
    serving bigint;  -- the current turn
    queued bigint;   -- the owner's last queued turn
    running bigint;  -- the owner's last running one
BEGIN
    -- The queue's first row in fetch order, from the head of its index (migration 0023):
    -- a LIMIT 1 in the index's own order. max() over the same index was planned, with
    -- statistics of a nearly empty queue, as a scan of all of the queue's rows.
    SELECT -priority::bigint INTO head
      FROM procrastinate_jobs WHERE status = 'todo' AND queue_name = queue
     ORDER BY priority DESC, id LIMIT 1;
    IF head IS NULL THEN
        serving := 0;
    ELSE
        -- the partial index of 'doing' rows: one per busy slot
        SELECT -min(priority)::bigint INTO fetched
          FROM procrastinate_jobs
         WHERE status = 'doing' AND worker_id IS NOT NULL AND queue_name = queue;
        serving := CASE WHEN fetched = head - 1 THEN head - 1 ELSE head END;
    END IF;
    -- The owner's active jobs through the owner's own index ("not finished", as its
    -- predicate says: migration 0024; as jobs_active_count), each
    -- dispatch by its key: LIMIT keeps the lookup a subquery, which the planner would
    -- otherwise make a hash join over all of procrastinate_jobs. The queue is checked
    -- after the lookup, not in it: with both conditions, a plan made while the table was
    -- small could read the dispatch through the queue's index, every queued row of it
    -- for each of the owner's jobs (40,000 rows a create, 20,000 queued, in a test).
    IF user_id IS NOT NULL THEN
        SELECT -min(pj.priority) FILTER (WHERE pj.status = 'todo'
                                         AND pj.queue_name = queue)::bigint,
               -min(pj.priority) FILTER (WHERE pj.status = 'doing'
                                         AND pj.queue_name = queue)::bigint
          INTO queued, running
          FROM jobs, LATERAL (SELECT priority, status, queue_name FROM procrastinate_jobs
                               WHERE id = jobs.dispatch_id LIMIT 1) pj
         WHERE jobs.status NOT IN ('succeeded', 'failed') AND jobs.owner_user_id = user_id;
    ELSE
        SELECT -min(pj.priority) FILTER (WHERE pj.status = 'todo'
                                         AND pj.queue_name = queue)::bigint,
               -min(pj.priority) FILTER (WHERE pj.status = 'doing'
                                         AND pj.queue_name = queue)::bigint
          INTO queued, running
          FROM jobs, LATERAL (SELECT priority, status, queue_name FROM procrastinate_jobs
                               WHERE id = jobs.dispatch_id LIMIT 1) pj
         WHERE jobs.status NOT IN ('succeeded', 'failed') AND jobs.owner_user_id IS NULL
           AND jobs.owner_session_id = session_id;
    END IF;
    RETURN least(greatest(serving, queued + 1,
                          CASE WHEN running IS NOT NULL THEN least(running, serving) + 1 END),
                 2147483647);
END
$$;
