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
-- One more hit in the key's current window (a new window once the old one is over).
-- Every SET expression reads the old row, so both CASEs test the same window.
INSERT INTO rate_limits AS counter (key, window_started_at, hits)
VALUES (%(key)s, now(), 1)
ON CONFLICT (key) DO UPDATE
   SET hits = CASE WHEN counter.window_started_at > now() - make_interval(secs => %(window_s)s)
                   THEN counter.hits + 1 ELSE 1 END,
       window_started_at = CASE
           WHEN counter.window_started_at > now() - make_interval(secs => %(window_s)s)
           THEN counter.window_started_at ELSE now() END
RETURNING hits, greatest(1, ceil(extract(epoch FROM
    window_started_at + make_interval(secs => %(window_s)s) - now())))::int AS retry_after_s;

-- name: release_rate_limit
-- Takes back one hit (an attempt that turned out fine).
UPDATE rate_limits SET hits = greatest(hits - 1, 0) WHERE key = %(key)s;

-- name: clear_rate_limit
DELETE FROM rate_limits WHERE key = %(key)s;
