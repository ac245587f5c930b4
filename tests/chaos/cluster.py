"""The service under test as separate processes with no supervisor: an embedded PostgreSQL
that can be stopped and started again, the migrations, gunicorn through `jobs-web`, and
`jobs-worker` processes, each with its own log file. Every process is stopped on the way
out, and dies with the harness if the harness itself is killed (setpriv --pdeathsig)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests

from queue_jobs.db.embedded import start_embedded, uri_for
from tests.integration.support import free_port, wait_until

PROJECT_DIR = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the virtualenv's console scripts
SETPRIV = shutil.which("setpriv")
STOP_TIMEOUT_S = 30  # SIGTERM, then SIGKILL after this long
READY_TIMEOUT_S = 90
PROBE_TIMEOUT_S = 3


def spawn(command: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A child in a session of its own (a Ctrl-C at the terminal reaches only the harness,
    which then stops the children in order) that gets SIGKILL if the harness dies."""
    prefix = [SETPRIV, "--pdeathsig", "KILL", "--"] if SETPRIV else []
    with log.open("ab") as sink:
        return subprocess.Popen([*prefix, *command], cwd=PROJECT_DIR, env=dict(env),
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)


def stop_process(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_S) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _get_json(url: str) -> tuple[int, dict[str, Any]] | None:
    try:
        response = requests.get(url, timeout=PROBE_TIMEOUT_S)
        return response.status_code, dict(response.json())
    except (requests.RequestException, ValueError):
        return None


# pg_ctl daemonizes PostgreSQL, so it would outlive a harness killed with SIGKILL. This
# guard waits for the harness's end of a pipe to close (however the harness ends), then stops
# the server of the data directory (SIGINT: fast shutdown) and removes the directory.
_GUARD = """
import os, shutil, signal, sys, time
sys.stdin.read()
pgdata, remove = sys.argv[1], sys.argv[2]
try:
    with open(os.path.join(pgdata, "postmaster.pid")) as pidfile:
        postmaster = int(pidfile.readline())
    os.kill(postmaster, signal.SIGINT)
    for _ in range(100):
        time.sleep(0.1)
        os.kill(postmaster, 0)
except (OSError, ValueError):
    pass
shutil.rmtree(remove, ignore_errors=True)
"""


class Database:
    """pgserver's PostgreSQL in `pgdata`; stop() and start() keep the same address. The
    directory `remove` (which holds pgdata) is deleted when the harness ends."""

    def __init__(self, pgdata: Path, remove: Path) -> None:
        self.pgdata = pgdata
        self.server: Any = None
        self.uri = ""
        self.guard = subprocess.Popen([sys.executable, "-c", _GUARD, str(pgdata), str(remove)],
                                      stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      start_new_session=True)

    def start(self) -> None:
        self.server = start_embedded(self.pgdata)
        uri = uri_for(self.server)
        assert self.uri in ("", uri), (self.uri, uri)
        self.uri = uri

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()  # pg_ctl stop, fast mode: every connection is cut
            self.server = None

    def close(self) -> None:
        self.stop()
        assert self.guard.stdin is not None
        self.guard.stdin.close()  # the guard removes the directory
        try:
            self.guard.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.guard.kill()

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """One statement on a connection of its own (the harness's reads survive restarts)."""
        with psycopg.connect(self.uri, autocommit=True, connect_timeout=5) as conn:
            return list(conn.execute(sql, params).fetchall())


@dataclass
class Worker:
    """One jobs-worker process. `signalled` is set before the harness signals it, so an exit
    without it is one the worker made by itself."""

    slot: int
    process: subprocess.Popen[bytes]
    health_url: str
    log: Path
    worker_id: int | None = None
    signalled: str | None = None
    exit_code: int | None = None

    def alive(self) -> bool:
        return self.process.poll() is None

    def current_worker_id(self) -> int | None:
        """procrastinate's id of this worker, from its /healthz (the last one seen if that
        does not answer)."""
        answer = _get_json(self.health_url)
        if answer and answer[1].get("workerId") is not None:
            self.worker_id = int(answer[1]["workerId"])
        return self.worker_id


@dataclass
class Exit:
    name: str
    code: int | None
    at_s: float


@dataclass
class Cluster:
    workdir: Path  # logs
    env: dict[str, str]
    database: Database
    concurrency: int
    clock: Callable[[], float]
    web: subprocess.Popen[bytes] | None = None
    web_url: str = ""
    workers: list[Worker] = field(default_factory=list)  # current process of each slot
    retired: list[Worker] = field(default_factory=list)  # earlier ones, all exited
    unexpected_exits: list[Exit] = field(default_factory=list)
    started = 0

    # --- starting ------------------------------------------------------------------------

    def migrate(self) -> None:
        done = subprocess.run([str(BIN / "jobs-migrate")], cwd=PROJECT_DIR,
                              env={**self.env, "DATABASE_URL": self.database.uri},
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"jobs-migrate failed: {done.stderr[-2000:]}")

    def start_web(self, processes: int) -> None:
        port = free_port()
        self.web_url = f"http://127.0.0.1:{port}"
        self.web = spawn([str(BIN / "jobs-web")],
                         {**self.env, "DATABASE_URL": self.database.uri, "PORT": str(port),
                          "WEB_CONCURRENCY": str(processes)}, self.workdir / "web.log")

        def ready() -> bool:
            assert self.web is not None
            if self.web.poll() is not None:
                raise RuntimeError(f"jobs-web exited; see {self.workdir / 'web.log'}")
            answer = _get_json(f"{self.web_url}/readyz")
            return bool(answer and answer[0] == 200)

        wait_until(ready, READY_TIMEOUT_S, 0.2, "jobs-web to answer /readyz")
        wait_until(lambda: len(self.web_workers()) >= processes, 30, 0.2, "gunicorn's workers")

    def start_worker(self, slot: int) -> Worker:
        port = free_port()
        self.started += 1
        log = self.workdir / f"worker-{slot}.{self.started}.log"
        process = spawn([str(BIN / "jobs-worker"), "--concurrency", str(self.concurrency),
                         "--metrics-port", str(port)],
                        {**self.env, "DATABASE_URL": self.database.uri}, log)
        worker = Worker(slot, process, f"http://127.0.0.1:{port}/healthz", log)
        if slot < len(self.workers):
            self.retired.append(self.workers[slot])
            self.workers[slot] = worker
        else:
            self.workers.append(worker)
        return worker

    def wait_ready(self, worker: Worker) -> None:
        def healthy() -> bool:
            if not worker.alive():
                raise RuntimeError(f"worker {worker.slot} exited at start; see {worker.log}")
            answer = _get_json(worker.health_url)
            return bool(answer and answer[0] == 200 and answer[1].get("status") == "ok")

        wait_until(healthy, READY_TIMEOUT_S, 0.2, f"worker {worker.slot}'s /healthz")
        worker.current_worker_id()

    # --- watching ------------------------------------------------------------------------

    def check_exits(self) -> list[Worker]:
        """Notes every process that exited without the harness asking, and returns the
        workers among them; none is restarted (there is no supervisor: surviving is the
        services' own job)."""
        exited = []
        for worker in self.workers:
            if worker.exit_code is None and not worker.alive():
                worker.exit_code = worker.process.returncode
                if worker.signalled is None:
                    exited.append(worker)
                    self.unexpected_exits.append(
                        Exit(f"worker {worker.slot} ({worker.log.name})", worker.exit_code,
                             round(self.clock(), 1)))
        if self.web is not None and self.web.poll() is not None and not any(
                e.name == "jobs-web" for e in self.unexpected_exits):
            self.unexpected_exits.append(Exit("jobs-web", self.web.returncode,
                                              round(self.clock(), 1)))
        return exited

    def live_workers(self) -> list[Worker]:
        return [w for w in self.workers if w.alive() and w.signalled is None]

    def web_workers(self) -> list[int]:
        """The gunicorn master's children: its worker processes."""
        if self.web is None or self.web.poll() is not None:
            return []
        master = self.web.pid  # setpriv execs: the child we started is gunicorn's master
        try:
            text = Path(f"/proc/{master}/task/{master}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    # --- stopping ------------------------------------------------------------------------

    def close(self) -> None:
        """Workers first (they hand their runs back), then the API, then PostgreSQL."""
        for worker in self.workers:
            if worker.alive():
                worker.signalled = worker.signalled or "stop"
        for worker in self.workers:
            stop_process(worker.process)
        if self.web is not None:
            stop_process(self.web)
        self.database.close()


def environment(**changes: str) -> dict[str, str]:
    """The harness's environment without what would point the services elsewhere, plus
    `changes`."""
    dropped = ("DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR", "OPENAI_", "LLM_", "WORKER_",
               "WEB_", "GUNICORN_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(dropped)}
    env.update(changes)
    return env
