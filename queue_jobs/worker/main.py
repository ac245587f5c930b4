"""The worker process: `python -m queue_jobs.worker [--concurrency N] [--queue Q ...]`.

The same procrastinate worker as `procrastinate --app=queue_jobs.app worker` (the App and
its worker_defaults of queue_jobs.worker.app, a graceful stop on SIGTERM/SIGINT), built
here (queue_jobs.worker.resilient's ResilientWorker, which lives through PostgreSQL
outages) so that this process knows its own worker id, and with signal handlers of its own
so that it can tell a requested stop (exit 0) from one the worker made by itself after a
failure (exit 1, for the supervisor). A requested stop is bounded, database up or not: the
process exits 0 within WORKER_SHUTDOWN_GRACE_S + EXIT_MARGIN_S of the signal, whatever a
pipeline thread is still blocked in. With
WORKER_METRICS_PORT set (and not 0) it also answers HTTP on
WORKER_METRICS_HOST (127.0.0.1):WORKER_METRICS_PORT, from a daemon thread:

- GET /healthz: 200 {"status": "ok", "workerId", "heartbeatAgeS"} while this worker is
  registered in procrastinate_workers and its row's last_heartbeat is younger than
  WORKER_STALLED_AFTER_S; else 503 {"status": "unhealthy", "reason"}, the reason starting
  "database unreachable: " while the database cannot be reached (the worker waits for it
  and takes jobs again by itself once it answers: a probe's failureThreshold should
  outlast the outages you expect, or restarts only add to them).
  The row is read from PostgreSQL on a short-lived connection of its own (never
  procrastinate's async pool), so a hung event loop, which stops beating, is reported
  dead although this thread still answers. For a liveness probe (Kubernetes httpGet,
  Docker HEALTHCHECK curl -f, ops/systemd/jobs-worker-check@.timer).
- GET /metrics: Prometheus text of this process's default registry: the job, step and LLM
  counters of queue_jobs.observability.job_metrics, the heartbeat age and worker id of
  queue_jobs.worker.health (read at scrape time), process_* of prometheus_client.
"""

from __future__ import annotations

import os

# prometheus_client chooses where samples live when it is first imported. The web side's
# gunicorn runs it in multiprocess mode (PROMETHEUS_MULTIPROC_DIR, which a shared
# environment file may carry to this process too); a worker must keep its own in-process
# registry, or its samples would go to files that no scrape of this port reads. Hence this
# comes before every other import.
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

import argparse
import asyncio
import json
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import psycopg
from procrastinate.app import WorkerOptions
from procrastinate.worker import Worker
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from queue_jobs.config.env_reader import exit_on_bad_settings
from queue_jobs.config.settings import DEFAULT_CONCURRENCY, DEFAULT_METRICS_HOST, QueueSettings
from queue_jobs.db import connections, store
from queue_jobs.observability import logs
from queue_jobs.worker.app import app, settings
from queue_jobs.worker.health import WorkerState, WorkerStateCollector
from queue_jobs.worker.resilient import ResilientWorker

logger = logging.getLogger("queue_jobs.worker")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

# A probe must answer within a supervisor's timeout even when PostgreSQL does not.
PROBE_CONNECT_TIMEOUT_S = 3  # libpq's minimum is 2
PROBE_STATEMENT_TIMEOUT_MS = 2000
# After a stop signal the process exits within the jobs' grace plus this, even if a hand-back
# or a pipeline thread (a blocked LLM call) is still waiting: the worker's own bounded
# shutdown ends at grace + resilient.HANDBACK_S; this is the backstop.
EXIT_MARGIN_S = 4.0

# --- command line -------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None,
               env: Mapping[str, str] | None = None) -> argparse.Namespace:
    """The options, whose defaults are the settings' (this process's, or those read from
    `env` when given)."""
    defaults = settings if env is None else QueueSettings.from_env(env)
    parser = argparse.ArgumentParser(
        prog="python -m queue_jobs.worker",
        description="Run a procrastinate worker of the job service, with /healthz and "
                    "/metrics on WORKER_METRICS_PORT.")
    parser.add_argument(
        "--concurrency", type=_positive_int, default=defaults.concurrency,
        help=f"jobs run at once (default: WORKER_CONCURRENCY or {DEFAULT_CONCURRENCY})")
    parser.add_argument(
        "--queue", dest="queues", action="append", metavar="QUEUE",
        help="a queue to take jobs from; repeat for several (default: all queues)")
    parser.add_argument(
        "--metrics-host", default=defaults.metrics_host,
        help="address of /healthz and /metrics (default: WORKER_METRICS_HOST or "
             f"{DEFAULT_METRICS_HOST})")
    parser.add_argument(
        "--metrics-port", type=_port, default=defaults.metrics_port,
        help="port of /healthz and /metrics; 0 serves nothing (default: "
             "WORKER_METRICS_PORT or 0)")
    # The environment's values were checked when the settings were read (the same rules as
    # these options'); `type` checks only what the command line says.
    return parser.parse_args(argv)


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return int(text)


def _port(text: str) -> int:
    if not text.strip().isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}")
    return int(text)


# --- the health check ---------------------------------------------------------------------


@dataclass(frozen=True)
class Health:
    ok: bool  # 200, else 503: a supervisor may restart the worker
    worker_id: int | None
    heartbeat_age_s: float | None
    reason: str | None = None

    def document(self, stalled_after_s: float) -> dict[str, Any]:
        document: dict[str, Any] = {
            "status": "ok" if self.ok else "unhealthy",
            "workerId": self.worker_id,
            "heartbeatAgeS": (None if self.heartbeat_age_s is None
                              else round(self.heartbeat_age_s, 3)),
            "stalledAfterS": stalled_after_s,
        }
        if self.reason:
            document["reason"] = self.reason
        return document


class HeartbeatProbe:
    """Is this process's worker registered and beating? Reads its procrastinate_workers
    row on a connection of its own (any thread; not the event loop's pool), so the answer
    is the database's: the same heartbeat the reaper and other workers judge it by."""

    def __init__(self, conninfo: str, stalled_after_s: float) -> None:
        self.conninfo = conninfo
        self.stalled_after_s = stalled_after_s
        self.worker: Worker | None = None  # set by run_worker once created

    def check(self) -> Health:
        worker = self.worker
        worker_id = worker.worker_id if worker is not None else None
        if worker is None or worker_id is None:
            # Worker.run sets run_task right after registering; worker_id goes back to None
            # once it has unregistered on its way out.
            started = worker is not None and worker.run_task is not None
            return Health(False, None, None,
                          "worker unregistered: stopping or stopped" if started
                          else "worker not registered yet: starting")
        try:
            age = self._heartbeat_age(worker_id)
        except psycopg.Error as error:
            # Not fit for work (nothing can be taken or written), though the worker waits
            # for the database by itself. Once it answers, the worker beats at once; a
            # worker that hung meanwhile shows a stale heartbeat.
            return Health(False, worker_id, None, "database unreachable: "
                          f"{type(error).__name__}: {connections.first_line(error)}")
        if age is None:
            return Health(False, worker_id, None,
                          f"worker {worker_id} is gone from procrastinate_workers (pruned "
                          "as stalled by another worker)")
        if age >= self.stalled_after_s:
            return Health(False, worker_id, age,
                          f"heartbeat {age:.1f} s old, stalled after "
                          f"{self.stalled_after_s:g} s: the worker's event loop is not "
                          "beating")
        return Health(True, worker_id, age)

    def state(self) -> WorkerState:
        health = self.check()
        return WorkerState(worker_id=health.worker_id, heartbeat_age_s=health.heartbeat_age_s)

    def _heartbeat_age(self, worker_id: int) -> float | None:
        with psycopg.connect(self.conninfo, connect_timeout=PROBE_CONNECT_TIMEOUT_S,
                             application_name="jobs-worker-healthz") as conn:
            conn.execute(f"SET statement_timeout = {PROBE_STATEMENT_TIMEOUT_MS}")
            return store.worker_heartbeat_age(conn, worker_id)


# --- HTTP ---------------------------------------------------------------------------------

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def make_wsgi_app(probe: HeartbeatProbe) -> Callable[[dict[str, Any], StartResponse],
                                                     Iterable[bytes]]:
    def application(environ: dict[str, Any], start_response: StartResponse
                    ) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path not in ("/healthz", "/metrics"):
            return _respond(start_response, method, "404 Not Found",
                            _json({"error": "not found", "paths": ["/healthz", "/metrics"]}))
        if method not in ("GET", "HEAD"):
            return _respond(start_response, method, "405 Method Not Allowed",
                            _json({"error": "method not allowed"}), [("Allow", "GET, HEAD")])
        if path == "/healthz":
            health = probe.check()
            return _respond(start_response, method,
                            "200 OK" if health.ok else "503 Service Unavailable",
                            _json(health.document(probe.stalled_after_s)))
        return _respond(start_response, method, "200 OK",
                        (CONTENT_TYPE_LATEST, generate_latest(REGISTRY)))

    return application


def _json(document: dict[str, Any]) -> tuple[str, bytes]:
    return "application/json", json.dumps(document).encode()


def _respond(start_response: StartResponse, method: str, status: str,
             content: tuple[str, bytes], extra: list[tuple[str, str]] | None = None
             ) -> list[bytes]:
    content_type, body = content
    start_response(status, [("Content-Type", content_type),
                            ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store"), *(extra or [])])
    return [] if method == "HEAD" else [body]


class _Server(ThreadingMixIn, WSGIServer):
    # A probe waiting on an unreachable database does not hold up the next scrape.
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds
        logger.debug("%s %s", self.address_string(), format % args)


def start_http_server(host: str, port: int, probe: HeartbeatProbe) -> WSGIServer:
    """Bind now (a taken port fails the start), serve from a daemon thread."""
    REGISTRY.register(WorkerStateCollector(probe.state))
    server = make_server(host, port, make_wsgi_app(probe),
                         server_class=_Server6 if ":" in host else _Server,
                         handler_class=_Handler)
    threading.Thread(target=server.serve_forever, name="worker-http", daemon=True).start()
    return server


# --- the worker ---------------------------------------------------------------------------


async def run_worker(probe: HeartbeatProbe, options: WorkerOptions) -> bool:
    """App.run_worker_async (and the CLI's open_async around it), keeping the Worker.
    True if a signal stopped it, False if it stopped by itself (a side task failed)."""
    async with app.open_async():
        app.perform_import_paths()
        # Our own handlers, not procrastinate's, to tell a requested stop from a failure;
        # like procrastinate's, the first signal stops gracefully and a second one kills.
        final: WorkerOptions = {**app.worker_defaults, **options,
                                "install_signal_handlers": False}
        worker = ResilientWorker(app=app, **final)
        probe.worker = worker
        loop = asyncio.get_running_loop()
        signalled: list[int] = []

        def stop(signum: int) -> None:
            logger.info("%s: stopping; running jobs get WORKER_SHUTDOWN_GRACE_S, then are "
                        "handed to another worker (a second signal kills)",
                        signal.Signals(signum).name)
            signalled.append(signum)
            _exit_at_the_latest(settings.shutdown_grace_s + EXIT_MARGIN_S)
            for each in STOP_SIGNALS:
                loop.remove_signal_handler(each)
            worker.stop()

        for each in STOP_SIGNALS:
            loop.add_signal_handler(each, stop, each)
        await worker.run()
        return bool(signalled)


def _exit_at_the_latest(seconds: float) -> None:
    """The bound of a requested stop: exit 0 after `seconds` unless the process has exited
    by then. Runs it could not hand back are the reaper's (re-dispatched, not charged)."""

    def exit_now() -> None:
        time.sleep(seconds)
        logger.warning("stop took over %.1f s: exiting now; runs not handed back are left "
                       "for the reaper", seconds)
        logging.shutdown()  # writes the queued log lines
        os._exit(0)

    threading.Thread(target=exit_now, name="exit-deadline", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    with exit_on_bad_settings("jobs-worker"):  # PROCRASTINATE_LOG_LEVEL
        logs.configure()  # JSON lines (LOG_FORMAT=text: plain), procrastinate's included
    args = parse_args(argv)
    probe = HeartbeatProbe(settings.database_url, settings.stalled_after_s)
    server = None
    if args.metrics_port:
        try:
            server = start_http_server(args.metrics_host, args.metrics_port, probe)
        except OSError as error:
            logger.error("cannot serve /healthz on %s:%s: %s", args.metrics_host,
                         args.metrics_port, error)
            return 1
        shown = f"[{args.metrics_host}]" if ":" in args.metrics_host else args.metrics_host
        logger.info("worker health on http://%s:%s/healthz, metrics on /metrics", shown,
                    args.metrics_port)
    logger.info("launching a worker on %s, concurrency %s",
                ", ".join(args.queues) if args.queues else "all queues", args.concurrency)
    options: WorkerOptions = {"concurrency": args.concurrency}
    if args.queues:
        options["queues"] = args.queues
    try:
        stopped_by_signal = asyncio.run(run_worker(probe, options))
    except KeyboardInterrupt:  # before our handlers are in place
        return 130
    except Exception:
        logger.exception("the worker stopped on an error")
        return 1
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    if not stopped_by_signal:  # e.g. a side task failed: let the supervisor act
        logger.error("the worker stopped by itself (see the error above)")
        return 1
    if any(thread.is_alive() and not thread.daemon
           for thread in threading.enumerate() if thread is not threading.main_thread()):
        # Pipeline threads of runs handed back (or left for the reaper) may be blocked in
        # an LLM or HTTP call for a while yet; the interpreter would wait for them at exit.
        # Whatever they might still write is fenced, so the process ends now.
        logging.shutdown()  # writes the queued log lines
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
