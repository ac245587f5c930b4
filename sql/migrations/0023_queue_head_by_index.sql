-- A queue's 'todo' dispatches in fetch order (priority DESC, id ASC), one queue at a
-- time. jobs_dispatch_fair_turn (sql/functions: its head read, a LIMIT 1 of this order,
-- planned without sequential scans) and the queue_positions counts (a range of it) read
-- the queue here. On procrastinate's own index (all queues, the queue a filter) the plan
-- depended on the statistics: after a burst into a queue that was empty at the last
-- ANALYZE, the head read became a bitmap over every queued row, 4 ms a create at 20,000
-- queued instead of 0.1, until autovacuum analysed the table (a minute or more into the
-- burst). procrastinate's table: a procrastinate upgrade
-- reviews this file (sql/queries/procrastinate.sql lists what else).
-- lock_timeout: rather fail the deploy (and run it again) than queue every create behind
-- a long transaction while waiting for the index build's lock on the table.
SET LOCAL lock_timeout = '5s';
CREATE INDEX jobs_queue_todo_order_idx
    ON procrastinate_jobs (queue_name, priority DESC, id) WHERE status = 'todo';
