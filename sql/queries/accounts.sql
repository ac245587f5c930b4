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
-- Every SET expression reads the old row, so the CASEs all test the same window.
INSERT INTO rate_limits AS counter (key, window_started_at, hits, expires_at)
VALUES (%(key)s, now(), 1, now() + make_interval(secs => %(window_s)s))
ON CONFLICT (key) DO UPDATE
   SET hits = CASE WHEN counter.expires_at > now() THEN counter.hits + 1 ELSE 1 END,
       window_started_at = CASE WHEN counter.expires_at > now()
                                THEN counter.window_started_at ELSE now() END,
       expires_at = CASE WHEN counter.expires_at > now()
                         THEN counter.expires_at ELSE excluded.expires_at END
RETURNING hits, window_started_at,
          greatest(1, ceil(extract(epoch FROM expires_at - now())))::int AS retry_after_s;

-- name: release_rate_limit
-- Takes back one hit (an attempt that turned out fine), unless its window has ended.
UPDATE rate_limits SET hits = greatest(hits - 1, 0)
 WHERE key = %(key)s AND window_started_at = %(window_started_at)s;

-- name: clear_rate_limit
DELETE FROM rate_limits WHERE key = %(key)s;
