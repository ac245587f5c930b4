-- Fair use at job creation: active-job limits and Idempotency-Key.

-- name: lock_key
-- Until the transaction ends (sql/functions/lock_key.sql: who locks what, and why).
SELECT lock_key(%(key)s);

-- name: count_active_jobs
SELECT jobs_active_count(%(user_id)s, %(session_id)s) AS active;

-- name: find_idempotency_key
SELECT job_id, request_hash FROM idempotency_keys
 WHERE owner_key = %(owner_key)s AND key = %(key)s AND expires_at > now();

-- name: save_idempotency_key
-- An expired row belongs to an earlier use of the key: take it over.
INSERT INTO idempotency_keys (owner_key, key, request_hash, job_id, expires_at)
VALUES (%(owner_key)s, %(key)s, %(request_hash)s, %(job_id)s,
        now() + make_interval(secs => %(window_s)s))
ON CONFLICT (owner_key, key) DO UPDATE
   SET request_hash = excluded.request_hash, job_id = excluded.job_id, created_at = now(),
       expires_at = excluded.expires_at;

-- name: delete_expired_idempotency_keys
-- In batches, so that no sweep holds many row locks or runs long.
DELETE FROM idempotency_keys
 WHERE ctid = ANY (ARRAY(SELECT ctid FROM idempotency_keys WHERE expires_at < now()
                          LIMIT %(batch)s));

-- name: delete_expired_rate_limits
DELETE FROM rate_limits
 WHERE ctid = ANY (ARRAY(SELECT ctid FROM rate_limits WHERE expires_at < now()
                          LIMIT %(batch)s));
