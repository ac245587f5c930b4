-- name: insert_image
-- The image is owned like the job that made it.
INSERT INTO images (id, job_id, content_type, data, prompt, owner_user_id, owner_session_id)
SELECT %(id)s, id, %(content_type)s, %(data)s, %(prompt)s, owner_user_id, owner_session_id
  FROM jobs WHERE id = %(job_id)s;

-- name: get_owned_image
SELECT content_type, data
  FROM images
 WHERE id = %(id)s
   AND (owner_user_id = %(user_id)s
        OR (owner_user_id IS NULL AND owner_session_id = %(session_id)s));
