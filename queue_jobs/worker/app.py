"""The procrastinate App. `procrastinate --app=queue_jobs.app worker` finds it through
queue_jobs.__getattr__ (the dotted path names an attribute of the package, so this module
cannot itself be called `app`).

The web side does not use it: it dispatches with procrastinate's SQL function inside its
own statements (see sql/functions/jobs_dispatch_run.sql).
"""

from __future__ import annotations

from procrastinate import App, PsycopgConnector

from queue_jobs.config.env_reader import exit_on_bad_settings
from queue_jobs.config.settings import QueueSettings
from queue_jobs.db import connections

# The worker process's settings, read once. Every way of starting a worker imports this
# module first (jobs-worker, `python -m queue_jobs.worker`, procrastinate's CLI), so a bad
# value ends it here with one line naming the variable, before any connection is tried.
with exit_on_bad_settings("jobs-worker"):
    settings = QueueSettings.from_env()


def make_connector(conninfo: str) -> PsycopgConnector:
    return PsycopgConnector(
        conninfo=conninfo,
        # keepalives: notice a dead server; connect_timeout: fail fast, let the supervisor retry
        kwargs={"keepalives": 1, "keepalives_idle": 30, "connect_timeout": 5},
        min_size=1, max_size=4,
        # No test round trip before each of procrastinate's statements, no BEGIN and
        # COMMIT around it (connections.async_pool): six round trips a job fewer (bench/results.md).
        pool_factory=connections.async_pool,
    )


app = App(
    connector=make_connector(settings.database_url),
    import_paths=["queue_jobs.worker.tasks"],
    worker_defaults={
        "additional_context": {"settings": settings},
        # On SIGTERM, running jobs get this long, then are handed to another worker.
        "shutdown_graceful_timeout": settings.shutdown_grace_s,
        "update_heartbeat_interval": settings.heartbeat_s,
        "stalled_worker_timeout": settings.stalled_after_s,
        # Our jobs table keeps the history; finished dispatch rows only slow worker start.
        "delete_jobs": "successful",
    },
)
