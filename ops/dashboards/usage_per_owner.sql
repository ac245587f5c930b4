-- title: Usage per owner, last 24 h
-- chart: table
-- order: 80
-- column: owner_kind | Kind
-- column: llm_calls | LLM calls
-- column: llm_tokens | LLM tokens
-- column: last_created_at | Last created | time
-- Jobs created in the last 24 hours per user or anonymous session: how many, how many are
-- active now (the fair-use limits count those), failed, and the LLM calls and tokens they
-- spent. The 100 heaviest. An index range scan of one day of jobs_created_id_idx.
-- A session id is its owner's only credential: shown as a short hash, never itself
-- (hashed after the top 100 are chosen, so 100 hashes however many owners).
WITH heaviest AS (
    SELECT owner_user_id,
           CASE WHEN owner_user_id IS NULL THEN owner_session_id END AS session_id,
           count(*) AS created,
           count(*) FILTER (WHERE status IN ('queued', 'running')) AS active,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           sum(llm_calls) AS llm_calls,
           sum(llm_tokens) AS llm_tokens,
           max(created_at) AS last_created_at
      FROM jobs
     WHERE created_at > now() - interval '24 hours'
     GROUP BY 1, 2
     ORDER BY created DESC, last_created_at DESC
     LIMIT 100
)
SELECT CASE WHEN owner_user_id IS NOT NULL THEN 'user' ELSE 'session' END AS owner_kind,
       coalesce(owner_user_id::text,
                'session:' || left(encode(sha256(convert_to(session_id, 'UTF8')), 'hex'), 12))
           AS owner,
       created, active, failed, llm_calls, llm_tokens, last_created_at
  FROM heaviest
 ORDER BY created DESC, last_created_at DESC;
