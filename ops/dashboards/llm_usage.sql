-- title: LLM calls and tokens per day
-- chart: table
-- order: 70
-- column: day | Day (UTC)
-- column: type | Job type
-- column: calls | LLM calls
-- column: input_tokens | Input tokens
-- column: output_tokens | Output tokens
-- The last 14 UTC days of LLM use per model and job type, from the llm_usage_daily rollup
-- (each call adds itself as it returns), so it costs a few dozen rows, however busy.
SELECT day, model, job_type AS type,
       sum(calls) AS calls,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens
  FROM llm_usage_daily
 WHERE day > (now() AT TIME ZONE 'UTC')::date - 14
 GROUP BY day, model, job_type
 ORDER BY day DESC, model, job_type;
