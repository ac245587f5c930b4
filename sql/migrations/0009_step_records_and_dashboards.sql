-- Step records, LLM usage and the indexes the ops dashboards (ops/dashboards/*.sql) read.
-- The index builds hold back writes to jobs (reads go on) for about a second per million
-- rows; the ALTER TABLE comes last, so its brief exclusive lock is held only until the
-- commit right after it. lock_timeout: rather fail the deploy (and run it again) than
-- queue every status poll behind a long transaction while waiting for that lock.
SET LOCAL lock_timeout = '5s';

-- One row per finished run of a step, with the LLM calls it made: succeeded, failed, or
-- interrupted (cancelled, timed out, or its run lost the job: a shutdown, the reaper).
-- Retention deletes them with their job.
CREATE TABLE job_steps (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id        uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    job_type      text NOT NULL,
    step          text NOT NULL,
    attempt       integer NOT NULL,
    outcome       text NOT NULL CONSTRAINT job_steps_outcome_known
        CHECK (outcome IN ('succeeded', 'failed', 'interrupted')),
    duration_ms   integer NOT NULL,
    llm_calls     integer NOT NULL DEFAULT 0,
    input_tokens  bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    finished_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_steps_job_idx ON job_steps (job_id);
-- Step durations of the last 24 h: an index-only scan of one day's range.
CREATE INDEX job_steps_finished_idx ON job_steps (finished_at)
    INCLUDE (job_type, step, outcome, duration_ms);

-- LLM calls and tokens per UTC day: a small rollup, added to by each step as it finishes
-- (a few rows a day), so the daily figures need no scan and outlive job retention.
CREATE TABLE llm_usage_daily (
    day           date NOT NULL,
    job_type      text NOT NULL,
    step          text NOT NULL,
    model         text NOT NULL,
    calls         bigint NOT NULL DEFAULT 0,
    input_tokens  bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, job_type, step, model)
);

-- Created per minute, usage per owner: a range of created_at.
CREATE INDEX jobs_created_idx ON jobs (created_at);
-- Runs started per minute.
CREATE INDEX jobs_run_started_idx ON jobs (run_started_at) WHERE run_started_at IS NOT NULL;
-- Finished per minute, failure rate, retention: a range of finished_at, index-only.
CREATE INDEX jobs_finished_idx ON jobs (finished_at) INCLUDE (type, status, error_code)
    WHERE finished_at IS NOT NULL;

-- Writes one step record and adds its LLM usage to the day's rollup. `_usage` is a JSON
-- array of {model, calls, input_tokens, output_tokens}, sorted by model (so concurrent
-- steps lock rollup rows in the same order). The caller updates the job row itself.
CREATE FUNCTION jobs_record_step(_job_id uuid, _job_type text, _attempt integer,
                                 _step text, _outcome text, _duration_ms integer,
                                 _usage jsonb) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO job_steps (job_id, job_type, step, attempt, outcome, duration_ms, llm_calls,
                           input_tokens, output_tokens)
    SELECT _job_id, _job_type, _step, _attempt, _outcome, _duration_ms,
           coalesce(sum(u.calls), 0), coalesce(sum(u.input_tokens), 0),
           coalesce(sum(u.output_tokens), 0)
      FROM jsonb_to_recordset(_usage)
           AS u(model text, calls integer, input_tokens bigint, output_tokens bigint);
    INSERT INTO llm_usage_daily AS d (day, job_type, step, model, calls, input_tokens,
                                      output_tokens)
    SELECT (now() AT TIME ZONE 'UTC')::date, _job_type, _step, u.model, u.calls,
           u.input_tokens, u.output_tokens
      FROM jsonb_to_recordset(_usage)
           AS u(model text, calls integer, input_tokens bigint, output_tokens bigint)
    ON CONFLICT (day, job_type, step, model) DO UPDATE
       SET calls = d.calls + EXCLUDED.calls,
           input_tokens = d.input_tokens + EXCLUDED.input_tokens,
           output_tokens = d.output_tokens + EXCLUDED.output_tokens;
$$;

-- A job's LLM spend, summed over its steps and attempts (usage per owner).
ALTER TABLE jobs ADD COLUMN llm_calls integer NOT NULL DEFAULT 0,
                 ADD COLUMN llm_tokens bigint NOT NULL DEFAULT 0;
