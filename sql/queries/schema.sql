-- name: applied_migrations
SELECT version FROM schema_migrations ORDER BY version;

-- name: ping
SELECT 1 AS ok;

-- name: begin_dashboard_snapshot
-- The ops dashboards' snapshot: must be the first statement of its transaction; the
-- timeout and the time zone (every timestamp in one zone) last until its end.
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;

-- name: dashboard_settings
SELECT set_config('statement_timeout', %(timeout_ms)s, true),
       set_config('TimeZone', 'UTC', true);
