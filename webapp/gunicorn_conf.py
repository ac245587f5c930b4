"""gunicorn settings of `jobs-web` (`gunicorn -c webapp/gunicorn_conf.py wsgi:app`).

gthread: status polls are short and I/O bound; threads let one process answer many at once.
A deprecated synchronous call (a minute or more) holds one thread, never the process: at
most LEGACY_CALLS_PER_PROCESS (WEB_THREADS - 2) run at once, so polls always find a thread.
`timeout` is the worker heartbeat, which gthread keeps beating during long requests; it
does not cut those calls short (JOB_TIMEOUT_S does).
No preload_app: each worker opens its own connection pool after the fork.
"""

import os
import tempfile
from typing import Any

from gunicorn.arbiter import Arbiter
from gunicorn.glogging import Logger
from gunicorn.workers.base import Worker

# /metrics sums every worker process's samples from files in this directory. Set here, in
# the master, before anything imports prometheus_client (it picks its storage at import
# time); a fresh one per start, so no stale samples of an earlier run are counted.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="jobs-metrics-"))


def child_exit(server: Arbiter, worker: Worker) -> None:
    """gunicorn hook: a worker's live gauges go with it."""
    from prometheus_client import multiprocess  # only now: see PROMETHEUS_MULTIPROC_DIR

    multiprocess.mark_process_dead(worker.pid)


bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = 60
graceful_timeout = 20
keepalive = 5
preload_app = False
# gunicorn's control socket (gunicornc) defaults to one path per user, shared by every
# instance on the host: off unless GUNICORN_CONTROL_SOCKET names this instance's own path.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket
# The app writes one JSON line per request itself (webapp.around_request; ACCESS_LOG=0 turns
# it off), so gunicorn's access log stays off, and its own lines are JSON too.
accesslog = None


class _WithoutAccessLog(Logger):
    """gunicorn's logger, minus the access log: with logconfig_dict set, gunicorn would
    gather each request's access-log fields and hand them to a logger that writes nothing
    (measurable on every status poll)."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None


logger_class = _WithoutAccessLog
if os.environ.get("LOG_FORMAT", "json") == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "queue_jobs.observability.logs.JsonFormatter"}},
        # queued: a request thread never waits for the stream (see logs.QueuedHandler)
        "handlers": {"stderr": {"()": "queue_jobs.observability.logs.QueuedHandler",
                                "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True}},
    }
