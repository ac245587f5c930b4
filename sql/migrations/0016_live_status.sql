-- Live status (docs/api.md, "Live status"): every write that can change a job's status
-- document bumps jobs.version and NOTIFYs jobs_changed with it, in the writer's own
-- transaction, whoever the writer is (API, worker, reaper, an operator's SQL). The
-- functions' bodies are in sql/functions (jobs_bump_version, jobs_notify_change,
-- users_notify_deleted).
SET LOCAL lock_timeout = '5s';

ALTER TABLE jobs ADD COLUMN version bigint NOT NULL DEFAULT 1;

-- Placeholders, replaced by the files in the same transaction (see 0015).
CREATE FUNCTION jobs_bump_version() RETURNS trigger LANGUAGE plpgsql
AS $$ BEGIN RETURN NULL; END $$;

CREATE FUNCTION jobs_notify_change() RETURNS trigger LANGUAGE plpgsql
AS $$ BEGIN RETURN NULL; END $$;

CREATE FUNCTION users_notify_deleted() RETURNS trigger LANGUAGE plpgsql
AS $$ BEGIN RETURN NULL; END $$;

-- Not llm_calls, llm_tokens, step_parts, step_outputs alone: they are not in the document.
CREATE TRIGGER jobs_version
    BEFORE UPDATE ON jobs
    FOR EACH ROW
    WHEN ((OLD.status, OLD.progress, OLD.current_step, OLD.error, OLD.error_code,
           OLD.updated_at, OLD.step_started_at, OLD.dispatch_id)
          IS DISTINCT FROM
          (NEW.status, NEW.progress, NEW.current_step, NEW.error, NEW.error_code,
           NEW.updated_at, NEW.step_started_at, NEW.dispatch_id))
    EXECUTE FUNCTION jobs_bump_version();

CREATE TRIGGER jobs_notify_update
    AFTER UPDATE ON jobs
    FOR EACH ROW
    WHEN (OLD.version <> NEW.version)
    EXECUTE FUNCTION jobs_notify_change();

CREATE TRIGGER jobs_notify_insert_delete
    AFTER INSERT OR DELETE ON jobs
    FOR EACH ROW
    EXECUTE FUNCTION jobs_notify_change();

CREATE TRIGGER users_notify_deleted
    AFTER DELETE ON users
    FOR EACH ROW
    EXECUTE FUNCTION users_notify_deleted();
