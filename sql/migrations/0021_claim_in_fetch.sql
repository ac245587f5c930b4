-- jobs_claim (sql/functions): the claim of a run's job, called by the worker's fetch in
-- the statement that fetches its dispatch (fetch_and_claim_job) and by claim_job. The
-- body is in its file; this migration only marks the schema as changed.
SELECT 1;
