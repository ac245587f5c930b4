-- Accounts, saved posts, image ownership and the fair-use bookkeeping (issue 3).

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    -- Stored normalised (trimmed, lower case): the unique constraint is the duplicate check.
    email         text NOT NULL CONSTRAINT users_email_key UNIQUE,
    name          text,
    password_hash text NOT NULL,   -- argon2id, encoded with its parameters and salt
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE posts (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- The content-generation job that wrote it; a post outlives its job's retention.
    job_id          uuid REFERENCES jobs (id) ON DELETE SET NULL,
    title           text NOT NULL,
    content         text NOT NULL,
    excerpt         text NOT NULL,
    tags            jsonb NOT NULL DEFAULT '[]',
    seo             jsonb NOT NULL DEFAULT '{}',
    visuals         jsonb NOT NULL DEFAULT '[]',
    status          text NOT NULL
        CONSTRAINT posts_status_known CHECK (status IN ('draft', 'published')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX posts_organization_created_idx ON posts (organization_id, created_at DESC);
CREATE INDEX posts_job_idx ON posts (job_id) WHERE job_id IS NOT NULL;

-- Images are owned like the job that made them (visible to the same user or session).
-- A saved post's images belong to the post instead: they must outlive the job.
ALTER TABLE images
    ADD COLUMN owner_user_id    uuid,
    ADD COLUMN owner_session_id text,
    ADD COLUMN post_id          uuid REFERENCES posts (id) ON DELETE CASCADE;
UPDATE images
   SET owner_user_id = jobs.owner_user_id, owner_session_id = jobs.owner_session_id
  FROM jobs
 WHERE jobs.id = images.job_id;
DELETE FROM images WHERE owner_user_id IS NULL AND owner_session_id IS NULL;
ALTER TABLE images
    ADD CONSTRAINT images_owner_present
        CHECK (owner_user_id IS NOT NULL OR owner_session_id IS NOT NULL);
CREATE INDEX images_post_idx ON images (post_id) WHERE post_id IS NOT NULL;

-- Fair use: counting an owner's active jobs must not scan its whole history.
CREATE INDEX jobs_active_owner_user_idx ON jobs (owner_user_id)
    WHERE status IN ('queued', 'running') AND owner_user_id IS NOT NULL;
CREATE INDEX jobs_active_owner_session_idx ON jobs (owner_session_id)
    WHERE status IN ('queued', 'running') AND owner_user_id IS NULL;

-- Idempotency-Key: (owner, key) -> the job the first request created. Rows older than the
-- window are overwritten by the next use of the key (and swept by retention).
CREATE TABLE idempotency_keys (
    owner_key    text NOT NULL,   -- 'user:<uuid>' or 'session:<id>'
    key          text NOT NULL,
    request_hash bytea NOT NULL,  -- a repeated key must come with the same request
    job_id       uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_key, key)
);
CREATE INDEX idempotency_keys_job_idx ON idempotency_keys (job_id);

-- Fixed-window counters for rate limits (failed logins, job creations per address).
-- One narrow row per key; no Redis needed at this volume.
CREATE TABLE rate_limits (
    key               text PRIMARY KEY,
    window_started_at timestamptz NOT NULL,
    hits              integer NOT NULL
);
