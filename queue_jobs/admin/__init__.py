"""jobs-admin, the operators' command line (queue_jobs.admin.main): the ops API's services
(queue_jobs.services.ops_jobs, ops_actions) against DATABASE_URL, with the same audit trail."""
