-- Progress writes (a step starts, a step's checkpoint) change jobs.updated_at. With
-- updated_at in jobs_active_idx, every one of them was a non-HOT update that added an
-- entry to each of the table's indexes. Active rows are few: indexing their status is
-- enough for the reaper and the dashboards, which then filter on updated_at. Free room on
-- each page lets an update stay on its page (HOT); pages written from now on keep 20 %
-- free. The new index is built first (writes wait, reads go on); the old one is dropped
-- last, so the exclusive lock that takes is held only until the commit right after.
SET LOCAL lock_timeout = '5s';
CREATE INDEX jobs_active_status_idx ON jobs (status) WHERE status IN ('queued', 'running');
ALTER TABLE jobs SET (fillfactor = 80);
DROP INDEX jobs_active_idx;
ALTER INDEX jobs_active_status_idx RENAME TO jobs_active_idx;
