"""gunicorn settings of `jobs-web` (`gunicorn -c webapp/gunicorn_conf.py wsgi:app`).

gevent (WEB_WORKER_CLASS, the default): every request is a greenlet, so one process holds
thousands of open event streams (GET /api/v1/jobs/:id/events) beside its polls, where a
thread per stream would not scale. psycopg (>= 3.1.14) and the pool cooperate with
gevent's monkey-patching, which the worker applies before it loads the app. Work that
holds the CPU (the deprecated synchronous calls' HTML parsing and image drawing) pauses
the process's other requests for its milliseconds; at most LEGACY_CALLS_PER_PROCESS run
at once. gthread stays available: then a stream holds a thread, and a process holds at
most WEB_THREADS / 2 of them.
`timeout` is the worker heartbeat, kept beating during long requests; it does not cut
those calls short (JOB_TIMEOUT_S does).
No preload_app: each worker opens its own connection pool after the fork.
"""

import gc
import os
import tempfile
from typing import Any

from gunicorn.arbiter import Arbiter
from gunicorn.glogging import Logger
from gunicorn.workers.base import Worker

from webapp.green import patch_for_gevent_worker

# First: gevent's monkey-patching (webapp/green.py), before anything imports psycopg.
patch_for_gevent_worker()

from webapp.one_write import install as answer_in_one_write  # noqa: E402 (patched first)

answer_in_one_write()  # headers and body in one write (webapp/one_write.py)

# /metrics sums every worker process's samples from files in this directory. Set here, in
# the master, before anything (the webapp package below) imports prometheus_client, which
# picks its storage at import time; a fresh one per start, so no stale samples of an
# earlier run are counted.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="jobs-metrics-"))

from queue_jobs.config.env_reader import exit_on_bad_settings  # noqa: E402 (patched first)
from queue_jobs.config.settings import QueueSettings  # noqa: E402
from webapp.config import WebConfig  # noqa: E402


def child_exit(server: Arbiter, worker: Worker) -> None:
    """gunicorn hook: a worker's live gauges go with it."""
    from prometheus_client import multiprocess  # only now: see PROMETHEUS_MULTIPROC_DIR

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker: Worker) -> None:
    """gunicorn hook, once a worker has loaded the app: what it holds now (modules, the
    app, its routes) lives as long as the process, so the garbage collector stops
    traversing it (gc.freeze). Every full collection of a busy process otherwise walks
    those hundreds of thousands of objects again: 10 % more 304 polls a second in
    bench/run.py --only hello, under the reference app as well.

    Its line says the worker is up: `make run` (ops/run_dev.py) counts them, one per
    WEB_CONCURRENCY, before it prints its banner."""
    gc.freeze()
    from queue_jobs.observability.logs import WEB_WORKER_READY

    worker.log.info("%s %s", WEB_WORKER_READY, worker.pid)


# Read here, in the master, before any worker starts: a bad value (the app's as well as
# gunicorn's own) stops jobs-web at once with one line naming it, rather than each worker
# failing to boot with a traceback. The app's processes read the queue side's settings too
# (the deprecated synchronous endpoints run pipelines). Not named `config`: gunicorn takes
# every name of this module that is one of its settings.
with exit_on_bad_settings("jobs-web"):
    web_config = WebConfig.from_env()
    QueueSettings.from_env()

bind = f"{web_config.host}:{web_config.port}"
workers = web_config.web_concurrency
worker_class = web_config.worker_class
threads = web_config.web_threads  # gthread only
# gevent only: open connections per process (streams, keep-alive polls) before it stops
# accepting; past LIVE_STREAMS_PER_PROCESS a stream is refused with 503 (poll instead).
worker_connections = web_config.streams_per_process + 1000
timeout = 60
graceful_timeout = 20
keepalive = 5
preload_app = False
# gunicorn's control socket (gunicornc) defaults to one path per user, shared by every
# instance on the host: off unless GUNICORN_CONTROL_SOCKET names this instance's own path.
control_socket = web_config.control_socket
control_socket_disable = not control_socket
# The app writes one line per request itself (webapp.hooks.around_request; ACCESS_LOG=0 turns
# it off), so gunicorn's access log stays off; its own lines are formatted as the app's:
# JSON, or short text at a terminal (LOG_FORMAT, queue_jobs.observability.logs).
accesslog = None


class _WithoutAccessLog(Logger):
    """gunicorn's logger, minus the access log: with logconfig_dict set, gunicorn would
    gather each request's access-log fields and hand them to a logger that writes nothing
    (measurable on every status poll)."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None


logger_class = _WithoutAccessLog
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"chosen": {"()": "queue_jobs.observability.logs.formatter",
                              "log_format": web_config.log_format}},
    # queued: a request thread never waits for the stream (see logs.QueuedHandler)
    "handlers": {"stderr": {"()": "queue_jobs.observability.logs.QueuedHandler",
                            "formatter": "chosen", "stream": "ext://sys.stderr"}},
    "root": {"level": web_config.log_level, "handlers": ["stderr"]},
    "loggers": {"gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True}},
}
