-- Paused job types (queue_jobs/services/pauses.py; migration 0018). A pause or a resume
-- first takes the type's lock (lock_key on 'job-type:<type>', exclusive), which every
-- dispatch of the type takes shared (sql/functions/jobs_dispatch_unless_paused.sql).
-- Taking back a paused type's dispatches is a statement on procrastinate's table:
-- hold_queued_dispatches, in sql/queries/procrastinate.sql.

-- name: insert_job_type_pause
-- Nothing if the type is paused already (the pause that stands keeps its reason).
INSERT INTO job_type_pauses (type, reason, paused_by)
VALUES (%(type)s, %(reason)s, %(paused_by)s)
ON CONFLICT (type) DO NOTHING
RETURNING type;

-- name: job_type_pause_exists
SELECT type FROM job_type_pauses WHERE type = %(type)s;

-- name: delete_job_type_pause
DELETE FROM job_type_pauses WHERE type = %(type)s;

-- name: dispatch_held_jobs
-- A resume's batch: the oldest %(batch)s held jobs of the type dispatched
-- (sql/functions/jobs_dispatch_held.sql); how many.
SELECT jobs_dispatch_held(%(type)s, %(queue)s, %(task)s, %(fair)s, %(batch)s) AS dispatched;

-- name: paused_job_types
-- Each paused type, its pause, and how many of its jobs it holds now (jobs_held_idx).
SELECT p.type, p.reason, p.paused_by, p.paused_at,
       (SELECT count(*) FROM jobs j
         WHERE j.type = p.type AND j.status = 'queued' AND j.dispatch_id IS NULL) AS held_jobs
  FROM job_type_pauses p
 ORDER BY p.paused_at, p.type;
