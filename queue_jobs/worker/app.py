"""The procrastinate App. `procrastinate --app=queue_jobs.app worker` finds it through
queue_jobs.__getattr__ (the dotted path names an attribute of the package, so this module
cannot itself be called `app`).

The web side does not use it: it dispatches with procrastinate's SQL function inside its
own statements (see sql/functions/jobs_dispatch_run.sql).
"""

from __future__ import annotations

from typing import Any

from procrastinate import App, PsycopgConnector

from queue_jobs.config.env_reader import exit_on_bad_settings
from queue_jobs.config.settings import QueueSettings
from queue_jobs.db import connections
from queue_jobs.worker.resilient import ResilientWorker

# The worker process's settings, read once. Every way of starting a worker imports this
# module first (jobs-worker, `python -m queue_jobs.worker`, procrastinate's CLI), so a bad
# value ends it here with one line naming the variable, before any connection is tried.
with exit_on_bad_settings("jobs-worker"):
    settings = QueueSettings.from_env()


def make_connector(conninfo: str) -> PsycopgConnector:
    return PsycopgConnector(
        conninfo=conninfo,
        # keepalives: notice a dead server; connect_timeout: fail fast, the worker retries
        kwargs={"keepalives": 1, "keepalives_idle": 30, "connect_timeout": 5},
        min_size=1, max_size=4,
        # While PostgreSQL is down a statement waits this long for a connection, then the
        # worker backs off and retries (queue_jobs.worker.resilient). The pool's own
        # reconnection attempts back off exponentially: ending each series after 2 s lets
        # the next statement start a fresh one, so a recovered server is used within
        # seconds rather than at the next of attempts spaced 16, 32, 64 s apart.
        timeout=5, reconnect_timeout=2,
        # No test round trip before each of procrastinate's statements, no BEGIN and
        # COMMIT around it (connections.async_pool): six round trips a job fewer (bench/results.md).
        pool_factory=connections.async_pool,
    )


class QueueApp(App):
    """procrastinate's App whose workers are ResilientWorkers, however they are started
    (jobs-worker, `procrastinate --app=queue_jobs.app worker`, App.run_worker_async)."""

    def _worker(self, **kwargs: Any) -> ResilientWorker:
        return ResilientWorker(app=self, **{**self.worker_defaults, **kwargs})


app = QueueApp(
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
