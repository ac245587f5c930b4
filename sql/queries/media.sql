-- name: insert_step_image
-- An image a step made, and its URL kept as a part of the step (jobs.step_parts: step ->
-- {part -> URL}), in one statement: a run cut short after it resumes with the image, so
-- it is neither paid for again nor left behind unused. Fenced like every worker write: a
-- run that lost the job stores nothing (and the next run draws the image itself).
-- updated_at: a part made is progress (the stuck-jobs dashboard reads it), and so is
-- %(progress)s (a unit's share of its step; NULL: unchanged), which never goes down.
WITH job AS (
    UPDATE jobs
       SET step_parts = jsonb_set(step_parts, ARRAY[%(step)s::text],
                                  coalesce(step_parts -> %(step)s::text, '{}')
                                  || jsonb_build_object(%(part)s::text, %(url)s::text)),
           progress = greatest(progress, coalesce(%(progress)s::int, progress)),
           updated_at = now()
     WHERE id = %(job_id)s AND dispatch_id = %(dispatch_id)s AND status = 'running'
       AND cancel_requested_at IS NULL
    RETURNING id
)
INSERT INTO images (id, job_id, content_type, data, prompt)
SELECT %(id)s, id, %(content_type)s, %(data)s, %(prompt)s
  FROM job
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
