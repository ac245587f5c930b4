-- name: insert_image
-- Fenced like every worker write: a run that lost the job stores nothing.
INSERT INTO images (id, job_id, content_type, data, prompt)
SELECT %(id)s, id, %(content_type)s, %(data)s, %(prompt)s
  FROM jobs
 WHERE id = %(job_id)s AND dispatch_id = %(dispatch_id)s AND status = 'running'
   AND cancel_requested_at IS NULL
RETURNING id;

-- name: get_owned_image
-- Visible like the job that made it; a saved post's images like the post's organization.
SELECT images.content_type, images.data
  FROM images
  LEFT JOIN jobs ON jobs.id = images.job_id
  LEFT JOIN posts ON posts.id = images.post_id
  LEFT JOIN organizations ON organizations.id = posts.organization_id
 WHERE images.id = %(id)s
   AND (jobs.owner_user_id = %(user_id)s
        OR (jobs.owner_user_id IS NULL AND jobs.owner_session_id = %(session_id)s)
        OR organizations.owner_user_id = %(user_id)s);
