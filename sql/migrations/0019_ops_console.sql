-- The operator's console (docs/operations.md, "The operator's console"): the indexes the
-- job search reads (queue_jobs/services/ops_jobs.py; one per filter, each ending in
-- (created_at, id), the list's order, so a page is a range of one index and never a sort
-- of every matching row), the audit trail of operators' actions, and each step record's
-- re-asks (the job page shows them beside the LLM calls).
-- Reused as they are: jobs_owner_user_created_idx and jobs_owner_session_created_idx
-- (owner filter: an owner's jobs by created_at; equal created_at are rare and few, so
-- their id order is an incremental sort of a handful of rows) and the primary key (id
-- prefix: a range of ids).
-- None of the new indexes holds a column a progress write changes (current_step,
-- progress, updated_at, step_started_at), so those writes stay HOT (0010). The builds
-- hold back writes to jobs (reads go on) for about a second per million rows each;
-- lock_timeout: rather fail the deploy (and run it again) than queue every status poll
-- behind a long transaction (0009).
SET LOCAL lock_timeout = '5s';

-- No filter, or a created range: newest first. Replaces jobs_created_idx (created_at),
-- whose ranges (dashboards, usage per owner) this one serves as well.
CREATE INDEX jobs_created_id_idx ON jobs (created_at, id);
DROP INDEX jobs_created_idx;
-- status=, type=, errorCode=.
CREATE INDEX jobs_status_created_idx ON jobs (status, created_at, id);
CREATE INDEX jobs_type_created_idx ON jobs (type, created_at, id);
CREATE INDEX jobs_error_code_created_idx ON jobs (error_code, created_at, id)
    WHERE error_code IS NOT NULL;

-- Who did what to which jobs, when: one row per single action, per batch of a bulk
-- action (each batch is its own transaction, and its row commits with its effect), per
-- batch of a prune. OPS_TOKEN is one shared secret: `actor` is what the caller declared
-- (X-Ops-Actor, or "cli:<login>" for jobs-admin). Never deleted by retention: a few rows
-- per operator action. job_ids: the jobs acted on (none for a prune: they are deleted).
CREATE TABLE ops_audit (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    action    text NOT NULL CONSTRAINT ops_audit_action_known
        CHECK (action IN ('retry', 'cancel', 'bulk-retry', 'bulk-cancel', 'prune',
                          'pause', 'resume')),
    filter    jsonb,           -- a bulk action's filter, as the operator gave it
    job_ids   uuid[] NOT NULL DEFAULT '{}',
    job_count integer NOT NULL,
    detail    jsonb NOT NULL DEFAULT '{}'
);
-- A job's page lists the actions that named it.
CREATE INDEX ops_audit_job_ids_idx ON ops_audit USING gin (job_ids);

-- Answers the model was asked for again in this step run (llm_reasks_total, per job).
ALTER TABLE job_steps ADD COLUMN reasks integer NOT NULL DEFAULT 0;
-- jobs_record_steps reads it from each step (its file); jobs_record_step takes it as a new
-- last argument with a default, so its file creates it under a new signature.
DROP FUNCTION jobs_record_step(uuid, text, integer, text, text, integer, jsonb);
