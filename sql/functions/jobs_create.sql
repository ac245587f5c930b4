-- A new job, unless fair use refuses it: creating a job is one statement (bench/run.py: a
-- transaction of five round trips made a create cost twice the reference insert). Its
-- parts are functions that the other callers share (sql/queries/), so each rule is
-- written once: lock_key, jobs_active_count, rate_limit_hit, jobs_dispatch_unless_paused.
-- Under the owner's lock: the active-job limit, then the creating address's rate
-- (address_limit 0: none), then the row and its dispatch, which commit (and NOTIFY)
-- together. inline: the row is already running under a local (negative) dispatch id, for
-- the caller to run in-process. fair: fair dispatch's priority (jobs_dispatch_run). A job
-- of a paused type is created queued with no dispatch (jobs_dispatch_unless_paused): held
-- until a resume; an inline one runs all the same (its caller is waiting for it).
-- Answers refused ('active_jobs' or 'address_rate', with retry_after_s for the latter)
-- having written nothing, else the job's dispatch id (NULL: held).
CREATE OR REPLACE FUNCTION jobs_create(new_id uuid, new_type text, user_id uuid,
                                       session_id text, new_input jsonb, owner_lock text,
                                       max_active integer, address_key text,
                                       address_limit integer, address_window_s integer,
                                       queue_name text, task_name text, inline boolean,
                                       fair boolean,
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
                jobs_dispatch_unless_paused(new_type, queue_name, task_name, new_id,
                                            user_id, session_id, fair))
        RETURNING jobs.dispatch_id INTO dispatch_id;
    END IF;
END
$$;
