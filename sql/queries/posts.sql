-- Blog posts saved by content-generation jobs.

-- name: insert_post
-- Fenced like every worker write. The id is derived from the job: a step repeated after a
-- crash finds its post there. The job's images move to the post, to outlive the job.
WITH fenced AS (
    SELECT id FROM jobs
     WHERE id = %(job_id)s AND dispatch_id = %(dispatch_id)s AND status = 'running'
       AND cancel_requested_at IS NULL
), inserted AS (
    INSERT INTO posts (id, organization_id, job_id, title, content, excerpt, tags, seo,
                       visuals, status)
    SELECT %(id)s, %(organization_id)s, fenced.id, %(title)s, %(content)s, %(excerpt)s,
           %(tags)s, %(seo)s, %(visuals)s, %(status)s
      FROM fenced
    ON CONFLICT (id) DO NOTHING
), moved AS (
    UPDATE images SET post_id = %(id)s, job_id = NULL
     WHERE job_id IN (SELECT id FROM fenced)
)
SELECT 1 AS ok FROM fenced;

-- name: get_post
SELECT id, organization_id, title, content, excerpt, tags, seo, visuals, status,
       created_at, updated_at
  FROM posts WHERE id = %(id)s;

-- name: get_user_post
SELECT posts.id, posts.organization_id, posts.title, posts.content, posts.excerpt,
       posts.tags, posts.seo, posts.visuals, posts.status, posts.created_at, posts.updated_at
  FROM posts
  JOIN organizations ON organizations.id = posts.organization_id
 WHERE posts.id = %(id)s AND organizations.owner_user_id = %(user_id)s;
