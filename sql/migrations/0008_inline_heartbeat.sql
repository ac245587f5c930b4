-- An in-request run (negative dispatch id) proves it is alive by beating this column every
-- second; a run whose process died (a deploy, a crash) stops beating, and the reaper fails
-- it within seconds instead of waiting for JOB_TIMEOUT_S. (Not updated_at: that one is in
-- the status document, and a beat must not change its ETag.)
ALTER TABLE jobs ADD COLUMN inline_heartbeat_at timestamptz;
