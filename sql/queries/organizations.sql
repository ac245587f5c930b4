-- name: insert_organization
INSERT INTO organizations (id, owner_user_id, owner_session_id, name, website_url, analysis)
SELECT %(id)s, owner_user_id, owner_session_id, %(name)s, %(website_url)s, %(analysis)s
  FROM jobs WHERE id = %(job_id)s
ON CONFLICT (id) DO NOTHING;
