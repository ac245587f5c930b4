-- Fair use at job creation: active-job limits and Idempotency-Key.

-- name: lock_key
-- Serialises transactions that lock the same key, until they end: two concurrent creates
-- of one owner cannot both pass the active-job limit or both use one idempotency key,
-- and parallel guesses at one password are counted one after the other.
SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 0));

-- name: count_active_user_jobs
SELECT count(*) AS active FROM jobs
 WHERE status IN ('queued', 'running') AND owner_user_id = %(user_id)s;

-- name: count_active_session_jobs
SELECT count(*) AS active FROM jobs
 WHERE status IN ('queued', 'running') AND owner_user_id IS NULL
   AND owner_session_id = %(session_id)s;

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
