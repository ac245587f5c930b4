-- Organizations belong to a user, or to the anonymous session that analysed the site
-- until a user presents that session with a valid JWT (the sign-up funnel).

-- name: insert_organization
-- Owned like the job; fenced like every worker write. The id is derived from the job, so
-- a repeated run finds the row (and answers it) instead of adding another.
WITH fenced AS (
    SELECT owner_user_id, owner_session_id FROM jobs
     WHERE id = %(job_id)s AND dispatch_id = %(dispatch_id)s AND status = 'running'
       AND cancel_requested_at IS NULL
), inserted AS (
    INSERT INTO organizations (id, owner_user_id, owner_session_id, name, website_url,
                               analysis)
    SELECT %(id)s, owner_user_id, owner_session_id, %(name)s, %(website_url)s, %(analysis)s
      FROM fenced
    ON CONFLICT (id) DO NOTHING
)
SELECT 1 AS ok FROM fenced;

-- name: claim_session_organizations
-- The user proved they hold the session: its organizations become theirs for good.
UPDATE organizations
   SET owner_user_id = %(user_id)s
 WHERE owner_user_id IS NULL AND owner_session_id = %(session_id)s
RETURNING id;

-- name: get_visible_organization
SELECT id, name, website_url, analysis, created_at
  FROM organizations
 WHERE id = %(id)s
   AND (owner_user_id = %(user_id)s
        OR (owner_user_id IS NULL AND owner_session_id = %(session_id)s));

-- name: list_user_organizations
SELECT id, name, website_url, analysis, created_at
  FROM organizations
 WHERE owner_user_id = %(user_id)s
 ORDER BY created_at DESC, id DESC;
