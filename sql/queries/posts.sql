-- Blog posts saved by content-generation jobs.

-- name: insert_post
-- The id is derived from the job: a step repeated after a crash finds its post there.
INSERT INTO posts (id, organization_id, job_id, title, content, excerpt, tags, seo, visuals,
                   status)
VALUES (%(id)s, %(organization_id)s, %(job_id)s, %(title)s, %(content)s, %(excerpt)s,
        %(tags)s, %(seo)s, %(visuals)s, %(status)s)
ON CONFLICT (id) DO NOTHING;

-- name: attach_job_images_to_post
-- The post keeps its images after the job is deleted by retention.
UPDATE images SET post_id = %(post_id)s, job_id = NULL WHERE job_id = %(job_id)s;

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
