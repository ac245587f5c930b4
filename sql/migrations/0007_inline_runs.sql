-- The deprecated synchronous endpoints run a job's pipeline inside the HTTP request. Such a
-- run has no procrastinate job; its fence is a local dispatch id, negative so that it can
-- never equal a procrastinate job id. The reaper leaves these runs to their request (and
-- fails them with TIMEOUT if the request's process died), never re-dispatches them.
CREATE SEQUENCE jobs_inline_dispatch_seq;
