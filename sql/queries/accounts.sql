-- Users and the fixed-window rate-limit counters.

-- name: create_user
INSERT INTO users (id, email, name, password_hash)
VALUES (%(id)s, %(email)s, %(name)s, %(password_hash)s)
RETURNING id, email, name;

-- name: get_user
SELECT id, email, name FROM users WHERE id = %(id)s;

-- name: get_login
SELECT id, email, name, password_hash FROM users WHERE email = %(email)s;

-- name: update_password_hash
-- argon2 parameters were raised since this hash was made: store the stronger one.
UPDATE users SET password_hash = %(password_hash)s, updated_at = now() WHERE id = %(id)s;

-- name: hit_rate_limit
-- One more hit in the key's window, unless it is full (sql/functions/rate_limit_hit.sql).
SELECT hits, window_started_at, retry_after_s
  FROM rate_limit_hit(%(key)s, %(window_s)s, %(allowed)s);

-- name: release_rate_limit
-- Takes back one hit (an attempt that turned out fine), unless its window has ended.
UPDATE rate_limits SET hits = greatest(hits - 1, 0)
 WHERE key = %(key)s AND window_started_at = %(window_started_at)s;

-- name: clear_rate_limit
DELETE FROM rate_limits WHERE key = %(key)s;
