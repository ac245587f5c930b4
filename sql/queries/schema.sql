-- name: applied_migrations
SELECT version FROM schema_migrations ORDER BY version;

-- name: ping
SELECT 1 AS ok;
