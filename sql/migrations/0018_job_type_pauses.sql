-- Pausing a job type (docs/operations.md, "Pausing a job type"; queue_jobs/services/pauses.py).
-- A row here holds a type: its queued jobs keep no dispatch (jobs.dispatch_id NULL, their
-- procrastinate rows taken back), so no worker starts them; creates, retries and
-- re-dispatches of the type leave theirs undispatched too (jobs_dispatch_unless_paused);
-- a resume dispatches them in creation order and drops the row last.
-- New functions (bodies in sql/functions): jobs_dispatch_unless_paused, which jobs_create
-- and the queries retry_failed_job and redispatch_job now call instead of
-- jobs_dispatch_run; jobs_dispatch_held (a resume's batch); jobs_rerank, the body of the
-- trigger jobs_rerank_owner, which a resume calls for the owners of the jobs it dispatched.
SET LOCAL lock_timeout = '5s';

CREATE TABLE job_type_pauses (
    type      text PRIMARY KEY
        CONSTRAINT job_type_pauses_type_known
        CHECK (type IN ('website-analysis', 'content-generation')),
    -- Shown to the type's users in their status documents: short, and never NULL (an
    -- empty reason is shown as none).
    reason    text NOT NULL DEFAULT ''
        CONSTRAINT job_type_pauses_reason_length CHECK (char_length(reason) <= 200),
    paused_by text NOT NULL,
    paused_at timestamptz NOT NULL DEFAULT now()
);

-- The held jobs of a type in creation order (a resume's batches, the count of held jobs):
-- empty but for a paused type's queued jobs. Built while writes to jobs wait, as 0010's.
CREATE INDEX jobs_held_idx ON jobs (type, created_at, id)
    WHERE status = 'queued' AND dispatch_id IS NULL;
