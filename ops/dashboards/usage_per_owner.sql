-- Usage per owner over the last 7 days: jobs created, active now, failed, by user or
-- anonymous session (the fair-use limits count the active ones).
SELECT CASE WHEN owner_user_id IS NOT NULL THEN 'user' ELSE 'session' END AS owner_kind,
       coalesce(owner_user_id::text, owner_session_id) AS owner,
       count(*) AS created,
       count(*) FILTER (WHERE status IN ('queued', 'running')) AS active,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       max(created_at) AS last_created_at
  FROM jobs
 WHERE created_at > now() - interval '7 days'
 GROUP BY 1, 2
 ORDER BY created DESC, owner
 LIMIT 100;
