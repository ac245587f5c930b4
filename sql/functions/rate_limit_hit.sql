-- One more hit in the key's fixed window (a new window once the old one is over). A hit
-- past `allowed` is refused and not written: it answers hits = allowed + 1. Every SET
-- expression reads the old row, so the CASEs all test the same window.
CREATE OR REPLACE FUNCTION rate_limit_hit(counter_key text, window_s integer,
                                          allowed integer, OUT hits integer,
                                          OUT window_started_at timestamptz,
                                          OUT retry_after_s integer)
    LANGUAGE plpgsql
AS $$
#variable_conflict use_column
BEGIN
    INSERT INTO rate_limits AS counter (key, window_started_at, hits, expires_at)
    VALUES (counter_key, now(), 1, now() + make_interval(secs => window_s))
    ON CONFLICT (key) DO UPDATE
       SET hits = CASE WHEN counter.expires_at > now() THEN counter.hits + 1 ELSE 1 END,
           window_started_at = CASE WHEN counter.expires_at > now()
                                    THEN counter.window_started_at ELSE now() END,
           expires_at = CASE WHEN counter.expires_at > now()
                             THEN counter.expires_at ELSE excluded.expires_at END
     WHERE counter.expires_at <= now() OR counter.hits < allowed
    RETURNING counter.hits, counter.window_started_at,
              greatest(1, ceil(extract(epoch FROM counter.expires_at - now())))::int
         INTO hits, window_started_at, retry_after_s;
    IF NOT FOUND THEN  -- the window is full
        SELECT counter.hits + 1, counter.window_started_at,
               greatest(1, ceil(extract(epoch FROM counter.expires_at - now())))::int
          INTO hits, window_started_at, retry_after_s
          FROM rate_limits AS counter
         WHERE counter.key = counter_key;
    END IF;
END
$$;
