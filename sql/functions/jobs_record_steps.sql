-- Step records and their LLM usage, for several steps at once: one insert per table, and
-- the run's last steps with the job's result, in the run's last write (save_steps).
-- `_steps` is a JSON array of {step, duration_ms, usage}; usage is a JSON array of
-- {model, calls, input_tokens, output_tokens}. The rollup rows are locked in (step, model)
-- order, the same in every transaction. The caller updates the job row itself.
-- PL/pgSQL, not LANGUAGE sql: a LANGUAGE sql function of several statements is planned
-- again at every call (PostgreSQL before 18), and planning its two inserts was most of a
-- run's last write (EXPLAIN ANALYZE: 0.37 of 0.50 ms). PL/pgSQL keeps each statement's
-- plan for the session.
CREATE OR REPLACE FUNCTION jobs_record_steps(_job_id uuid, _job_type text, _attempt integer,
                                             _outcome text, _steps jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_steps (job_id, job_type, step, attempt, outcome, duration_ms, llm_calls,
                           input_tokens, output_tokens)
    SELECT _job_id, _job_type, s.step, _attempt, _outcome, s.duration_ms,
           coalesce(u.calls, 0), coalesce(u.input_tokens, 0), coalesce(u.output_tokens, 0)
      FROM ROWS FROM (jsonb_to_recordset(_steps)
                      AS (step text, duration_ms integer, usage jsonb))
           WITH ORDINALITY AS s(step, duration_ms, usage, position),
           LATERAL (SELECT sum(r.calls) AS calls, sum(r.input_tokens) AS input_tokens,
                           sum(r.output_tokens) AS output_tokens
                      FROM jsonb_to_recordset(s.usage)
                           AS r(model text, calls integer, input_tokens bigint,
                                output_tokens bigint)) AS u
     ORDER BY s.position;
    INSERT INTO llm_usage_daily AS d (day, job_type, step, model, calls, input_tokens,
                                      output_tokens)
    SELECT (now() AT TIME ZONE 'UTC')::date, _job_type, s.step, u.model, sum(u.calls),
           sum(u.input_tokens), sum(u.output_tokens)
      FROM jsonb_to_recordset(_steps) AS s(step text, usage jsonb),
           jsonb_to_recordset(s.usage)
           AS u(model text, calls integer, input_tokens bigint, output_tokens bigint)
     GROUP BY s.step, u.model
     ORDER BY s.step, u.model
    ON CONFLICT (day, job_type, step, model) DO UPDATE
       SET calls = d.calls + EXCLUDED.calls,
           input_tokens = d.input_tokens + EXCLUDED.input_tokens,
           output_tokens = d.output_tokens + EXCLUDED.output_tokens;
END;
$$;
