-- R-pg: the bare life cycle of a job in PostgreSQL, for pgbench: insert it, claim the
-- oldest queued one with SKIP LOCKED, finish it. One pgbench transaction = one job. The
-- ceiling of any PostgreSQL queue on this machine (bench/run.py makes the table).
\set id 0
INSERT INTO bench_pg_jobs (status, payload) VALUES ('queued', '{"url": "https://example.com/"}');
WITH next AS (
    SELECT id FROM bench_pg_jobs WHERE status = 'queued' ORDER BY id LIMIT 1
       FOR UPDATE SKIP LOCKED
)
UPDATE bench_pg_jobs j SET status = 'running', started_at = now()
  FROM next WHERE j.id = next.id
RETURNING j.id AS id \aset
UPDATE bench_pg_jobs SET status = 'succeeded', finished_at = now() WHERE id = :id;
