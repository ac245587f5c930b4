-- Creating a job becomes one statement, jobs_create (bench/run.py: a transaction of five
-- round trips made a create cost twice the reference insert). Its parts are functions
-- that the other callers share (sql/queries/), so each rule is written once.

-- Serialises transactions that lock the same key, until they end (outside a transaction:
-- until the statement ends). Two creates of one owner cannot both pass the active-job
-- limit or both use one idempotency key; parallel guesses at one password are counted
-- one after the other.
CREATE FUNCTION lock_key(key text) RETURNS void
    LANGUAGE sql
AS $$
    SELECT pg_advisory_xact_lock(hashtextextended(key, 0))
$$;

-- An owner's queued and running jobs (a user's, else an anonymous session's).
CREATE FUNCTION jobs_active_count(user_id uuid, session_id text) RETURNS bigint
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF user_id IS NOT NULL THEN
        RETURN (SELECT count(*) FROM jobs
                 WHERE status IN ('queued', 'running') AND owner_user_id = user_id);
    END IF;
    RETURN (SELECT count(*) FROM jobs
             WHERE status IN ('queued', 'running') AND owner_user_id IS NULL
               AND owner_session_id = session_id);
END
$$;

-- One more hit in the key's fixed window (a new window once the old one is over). A hit
-- past `allowed` is refused and not written: it answers hits = allowed + 1. Every SET
-- expression reads the old row, so the CASEs all test the same window.
CREATE FUNCTION rate_limit_hit(counter_key text, window_s integer, allowed integer,
                               OUT hits integer, OUT window_started_at timestamptz,
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

-- A new job, unless fair use refuses it. Under the owner's lock: the active-job limit,
-- then the creating address's rate (address_limit 0: none), then the row and its
-- dispatch, which commit (and NOTIFY) together. inline: the row is already running
-- under a local (negative) dispatch id, for the caller to run in-process.
-- Answers refused ('active_jobs' or 'address_rate', with retry_after_s for the latter)
-- having written nothing, else the job's dispatch id.
CREATE FUNCTION jobs_create(new_id uuid, new_type text, user_id uuid, session_id text,
                            new_input jsonb, owner_lock text, max_active integer,
                            address_key text, address_limit integer,
                            address_window_s integer, queue_name text, task_name text,
                            inline boolean,
                            OUT refused text, OUT retry_after_s integer,
                            OUT dispatch_id bigint)
    LANGUAGE plpgsql
AS $$
DECLARE
    hit record;
BEGIN
    PERFORM lock_key(owner_lock);
    IF jobs_active_count(user_id, session_id) >= max_active THEN
        refused := 'active_jobs';
        RETURN;
    END IF;
    IF address_limit > 0 THEN
        SELECT * INTO hit FROM rate_limit_hit(address_key, address_window_s, address_limit);
        IF hit.hits > address_limit THEN
            refused := 'address_rate';
            retry_after_s := hit.retry_after_s;
            RETURN;
        END IF;
    END IF;
    IF inline THEN
        INSERT INTO jobs (id, type, owner_user_id, owner_session_id, input, status,
                          dispatch_id, run_started_at, inline_heartbeat_at)
        VALUES (new_id, new_type, user_id, session_id, new_input, 'running',
                -nextval('jobs_inline_dispatch_seq'), now(), now())
        RETURNING jobs.dispatch_id INTO dispatch_id;
    ELSE
        INSERT INTO jobs (id, type, owner_user_id, owner_session_id, input, dispatch_id)
        VALUES (new_id, new_type, user_id, session_id, new_input,
                jobs_dispatch_run(queue_name, task_name, new_id))
        RETURNING jobs.dispatch_id INTO dispatch_id;
    END IF;
END
$$;
