-- The service's own tables. procrastinate only dispatches; these rows are the truth
-- that status polls, retry, cancel and the ops dashboards read.

CREATE TABLE organizations (
    id               uuid PRIMARY KEY,
    owner_user_id    uuid,
    owner_session_id text,
    name             text NOT NULL,
    website_url      text NOT NULL,
    analysis         jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organizations_owner_present
        CHECK (owner_user_id IS NOT NULL OR owner_session_id IS NOT NULL)
);
CREATE INDEX organizations_owner_user_idx ON organizations (owner_user_id)
    WHERE owner_user_id IS NOT NULL;
CREATE INDEX organizations_owner_session_idx ON organizations (owner_session_id)
    WHERE owner_session_id IS NOT NULL;

CREATE TABLE jobs (
    id                  uuid PRIMARY KEY,
    type                text NOT NULL
        CONSTRAINT jobs_type_known CHECK (type IN ('website-analysis', 'content-generation')),
    -- A job belongs to a user when created with a valid JWT, else to the anonymous session.
    owner_user_id       uuid,
    owner_session_id    text,
    status              text NOT NULL DEFAULT 'queued'
        CONSTRAINT jobs_status_known CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    progress            smallint NOT NULL DEFAULT 0
        CONSTRAINT jobs_progress_range CHECK (progress BETWEEN 0 AND 100),
    current_step        text,          -- step key (labels live in code)
    attempt             integer NOT NULL DEFAULT 1,   -- API retries start a new attempt
    lost_runs           integer NOT NULL DEFAULT 0,   -- dispatches lost with their worker, this attempt
    input               jsonb NOT NULL,
    step_outputs        jsonb NOT NULL DEFAULT '{}',  -- checkpoints: step key -> output
    step_durations_ms   jsonb NOT NULL DEFAULT '{}',  -- step key -> ms, for ETA and dashboards
    result              jsonb,
    error               text,
    error_code          text,
    -- The procrastinate job currently allowed to write this row (the fence).
    dispatch_id         bigint,
    cancel_requested_at timestamptz,
    step_started_at     timestamptz,
    run_started_at      timestamptz,   -- start of the current run, for JOB_TIMEOUT_S
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    CONSTRAINT jobs_owner_present CHECK (owner_user_id IS NOT NULL OR owner_session_id IS NOT NULL)
);

-- Listing an owner's jobs, newest first.
CREATE INDEX jobs_owner_user_created_idx ON jobs (owner_user_id, created_at DESC)
    WHERE owner_user_id IS NOT NULL;
CREATE INDEX jobs_owner_session_created_idx ON jobs (owner_session_id, created_at DESC)
    WHERE owner_session_id IS NOT NULL;
-- ETA: recent successful jobs of one type.
CREATE INDEX jobs_succeeded_recent_idx ON jobs (type, finished_at DESC)
    WHERE status = 'succeeded';
-- Reaper, dashboards: the few active rows.
CREATE INDEX jobs_active_idx ON jobs (status, updated_at)
    WHERE status IN ('queued', 'running');
CREATE INDEX jobs_dispatch_idx ON jobs (dispatch_id) WHERE dispatch_id IS NOT NULL;

CREATE TABLE images (
    id           uuid PRIMARY KEY,
    job_id       uuid REFERENCES jobs (id) ON DELETE CASCADE,
    content_type text NOT NULL,
    data         bytea NOT NULL,
    prompt       text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX images_job_idx ON images (job_id);
