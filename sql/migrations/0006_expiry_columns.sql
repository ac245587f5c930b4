-- Idempotency keys and rate-limit windows carry their own end, set by whoever wrote them.
-- The sweep then needs no configuration of its own: a worker host whose settings differ
-- from the web hosts' can no longer delete a key or a window that is still in force.
ALTER TABLE idempotency_keys ADD COLUMN expires_at timestamptz;
UPDATE idempotency_keys SET expires_at = created_at + interval '1 day';
ALTER TABLE idempotency_keys ALTER COLUMN expires_at SET NOT NULL;
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

ALTER TABLE rate_limits ADD COLUMN expires_at timestamptz;
UPDATE rate_limits SET expires_at = window_started_at + interval '1 day';
ALTER TABLE rate_limits ALTER COLUMN expires_at SET NOT NULL;
CREATE INDEX rate_limits_expires_idx ON rate_limits (expires_at);
