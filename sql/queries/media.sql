-- name: insert_image
INSERT INTO images (id, job_id, content_type, data, prompt)
VALUES (%(id)s, %(job_id)s, %(content_type)s, %(data)s, %(prompt)s);

-- name: get_image
SELECT content_type, data FROM images WHERE id = %(id)s;
