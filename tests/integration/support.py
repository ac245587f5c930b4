"""Helpers for integration tests: the API through Flask's test client, an in-process
procrastinate worker, and waiting on conditions with a deadline (never bare sleeps)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import requests
from flask.testing import FlaskClient
from flask_jwt_extended import create_access_token
from psycopg_pool import AsyncConnectionPool
from werkzeug.serving import make_server

from queue_jobs.config.settings import QueueSettings
from queue_jobs.runs.resources import close_all
from queue_jobs.worker.app import app as queue_app
from queue_jobs.worker.resilient import ResilientWorker
from webapp import create_app

PROJECT_DIR = Path(__file__).resolve().parents[2]

T = TypeVar("T")


def wait_until(condition: Callable[[], T | None], timeout: float = 15.0,
               interval: float = 0.05, message: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@contextlib.contextmanager
def live_server(app: Any) -> Iterator[str]:
    """The app on a real HTTP server (threaded, like gthread), on a free loopback port;
    its pool is closed afterwards."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-app", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        app.extensions["live_feed"].close()
        app.extensions["db_pool"].close()


def free_port() -> int:
    """A TCP port nobody listens on now, for a server a test starts as a subprocess."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def new_session() -> dict[str, str]:
    return {"x-session-id": f"sess_{uuid.uuid4().hex}"}


class ApiClient:
    def __init__(self, flask_app: Any) -> None:
        self.app = flask_app
        self.http: FlaskClient = flask_app.test_client()

    @classmethod
    def for_database(cls, db_url: str, jwt_secret: str) -> ApiClient:
        return cls(create_app({"database_url": db_url, "jwt_secret_key": jwt_secret}))

    def close(self) -> None:
        self.app.extensions["live_feed"].close()
        self.app.extensions["db_pool"].close()

    def token_for(self, user_id: uuid.UUID | None = None,
                  expires: timedelta = timedelta(minutes=15), *,
                  account: bool = True) -> dict[str, str]:
        """An access token for `user_id` (None: a new one), whose account exists unless
        `account` is False (then the token is refused, as a deleted user's)."""
        user_id = user_id or uuid.uuid4()
        if account:  # a bare row: enough for a token, no password that logs in
            with self.app.extensions["db_pool"].connection() as conn:
                conn.execute("INSERT INTO users (id, email, password_hash) VALUES (%s, %s, '-')"
                             " ON CONFLICT (id) DO NOTHING", (user_id, f"{user_id}@example.test"))
        with self.app.app_context():
            token = create_access_token(identity=str(user_id), expires_delta=expires)
        return {"Authorization": f"Bearer {token}"}

    def register(self, email: str | None = None, password: str = "correct horse battery",
                 headers: dict[str, str] | None = None) -> dict[str, Any]:
        """A new account through the API: the body of 201 (accessToken, refreshToken, user)."""
        email = email or f"user-{uuid.uuid4().hex[:12]}@example.com"
        response = self.http.post("/api/v1/auth/register", headers=headers or {},
                                  json={"email": email, "password": password, "name": "Ada"})
        assert response.status_code == 201, response.get_json()
        return dict(response.get_json())

    @staticmethod
    def bearer(signed_in: dict[str, Any], **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {signed_in['accessToken']}", **extra}

    def create_analysis(self, url: str, headers: dict[str, str]) -> str:
        response = self.http.post("/api/v1/jobs/website-analysis", json={"url": url},
                                  headers=headers)
        assert response.status_code == 201, response.get_json()
        return str(response.get_json()["jobId"])

    def status(self, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/jobs/{job_id}/status", headers=headers)
        assert response.status_code == 200, response.get_json()
        return dict(response.get_json())

    def settled(self, db: Any) -> None:
        """Until this app's change feed has seen every commit made so far (by `db` or
        anyone): a poll may be answered from memory, which lags a commit by the
        notification's delivery. A barrier: notifications arrive in commit order."""
        marker = uuid.uuid4()
        db.execute("SELECT pg_notify('jobs_changed', %s)", (f"{marker} 1 -",))
        feed = self.app.extensions["live_feed"]
        if feed.connected:
            wait_until(lambda: feed.newest_version(marker) is not None,
                       message="the change feed to catch up")

    def wait_for_status(self, job_id: str, headers: dict[str, str], statuses: set[str],
                        timeout: float = 20.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            document = self.status(job_id, headers)
            return document if document["status"] in statuses else None

        return wait_until(reached, timeout, message=f"job {job_id} in {statuses}")


class ThreadWorker:
    """A real procrastinate worker (the same task code as the CLI) in a background thread."""

    def __init__(self, settings: QueueSettings, concurrency: int = 4,
                 queues: tuple[str, ...] = ("jobs",)) -> None:
        self.settings = settings
        self.concurrency = concurrency
        self.queues = list(queues)
        # The module's App itself (its periodic tasks point at it), opened on our database.
        self.app = queue_app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._worker: ResilientWorker | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-worker", daemon=True)

    def __enter__(self) -> ThreadWorker:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("worker did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop and self._task:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(20)
        if self._worker is not None:
            # A run whose thread outlives the stopped worker (blocked in a slow LLM call
            # past the grace) would retry its last write against the pool closed below
            # for ever, and keep the process from exiting: the worker gives it up, as a
            # stop that reaches its deadline does.
            self._worker.link.given_up.set()
        close_all()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        pool = AsyncConnectionPool(self.settings.database_url, min_size=1, max_size=4,
                                   open=False)
        await pool.open(wait=True)
        async with self.app.open_async(pool):
            # What App.run_worker_async does, keeping the worker for __exit__.
            self.app.perform_import_paths()
            self._worker = self.app._worker(
                concurrency=self.concurrency, install_signal_handlers=False,
                additional_context={"settings": self.settings},
                update_heartbeat_interval=0.5, stalled_worker_timeout=3,
                fetch_job_polling_interval=0.5, shutdown_graceful_timeout=2,
                queues=self.queues)
            self._task = asyncio.create_task(self._worker.run())
            self._started.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await pool.close()
        # procrastinate keeps an externally supplied pool forever (3.10: close_async returns
        # early); forget it so the next test's worker can open the App on its own database.
        connector: Any = self.app.connector
        connector._async_pool = None
        connector._pool_externally_set = False


# --- paid work: images and LLM usage -----------------------------------------------------

def image_ids_of_job(db: Any, job_id: str) -> set[str]:
    """The image rows a job holds (a saved post's images move to the post)."""
    rows = db.execute("SELECT id FROM images WHERE job_id = %s", (job_id,)).fetchall()
    return {str(row[0]) for row in rows}


def image_ids_in(document: Any) -> set[str]:
    """Every image a result (or any JSON document) references by its URL."""
    if isinstance(document, dict):
        return set().union(*(image_ids_in(value) for value in document.values()))
    if isinstance(document, list):
        return set().union(*(image_ids_in(value) for value in document))
    if isinstance(document, str) and document.startswith("/api/v1/images/"):
        return {document.removeprefix("/api/v1/images/")}
    return set()


def recorded_llm_calls(db: Any, job_id: str) -> tuple[int, int]:
    """(the job's llm_calls, the calls in the daily rollup): a test's database holds one
    job's usage, or the caller says which."""
    job = db.execute("SELECT llm_calls FROM jobs WHERE id = %s", (job_id,)).fetchone()
    daily = db.execute("SELECT coalesce(sum(calls), 0) FROM llm_usage_daily").fetchone()
    return int(job[0]), int(daily[0])


def wait_until_serving(base: str, timeout: float = 30.0) -> None:
    """Until a just-started server answers GET /healthz with 200."""
    def up() -> bool:
        try:
            return requests.get(f"{base}/healthz", timeout=5).status_code == 200
        except (requests.ConnectionError, requests.Timeout):
            # refused, or accepted into the listen backlog while the worker still boots
            return False

    wait_until(up, timeout=timeout, message=f"{base} to answer")


# --- live status: a server-sent events reader --------------------------------------------

@dataclass
class SseMessage:
    """One frame of an event stream: an event (`event`, `id`, `data`) or a comment."""

    event: str | None = None
    event_id: str | None = None
    data: str | None = None
    comment: str | None = None

    @property
    def document(self) -> dict[str, Any]:
        assert self.data is not None, self
        return dict(json.loads(self.data))


class SseReader:
    """Reads `GET /api/v1/jobs/:id/events` frame by frame over real HTTP."""

    def __init__(self, base: str, job_id: str, headers: dict[str, str],
                 last_event_id: str | None = None, read_timeout: float = 20.0) -> None:
        extra = {"Last-Event-ID": last_event_id} if last_event_id else {}
        self.response = requests.get(f"{base}/api/v1/jobs/{job_id}/events",
                                     headers={**headers, **extra}, stream=True,
                                     timeout=(5, read_timeout))
        self._lines = (line.decode() for line in self.response.iter_lines())

    def next(self) -> SseMessage | None:
        """The next frame; None once the server closed the stream."""
        message = SseMessage()
        for line in self._lines:
            if line == "":
                if message != SseMessage():
                    return message
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "":
                message.comment = value
            elif field == "event":
                message.event = value
            elif field == "id":
                message.event_id = value
            elif field == "data":
                message.data = value if message.data is None else f"{message.data}\n{value}"
        return None

    def next_event(self, within_s: float = 30.0) -> SseMessage | None:
        """The next event, past keep-alive comments; None once closed. AssertionError if
        only keep-alives come for `within_s`."""
        deadline = time.monotonic() + within_s
        while (message := self.next()) is not None:
            if message.comment is None:
                return message
            if time.monotonic() > deadline:
                raise AssertionError(f"no event within {within_s} s, only keep-alives")
        return None

    def close(self) -> None:
        self.response.close()


# --- worker processes as deployed ------------------------------------------------------

@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def get(self, path: str, method: str = "GET") -> requests.Response | None:
        assert self.process.poll() is None, f"worker exited:\n{self.output()}"
        try:
            return requests.request(method, f"{self.base}{path}", timeout=10)
        except requests.ConnectionError:
            return None

    def wait_health(self, status: int, timeout: float = 20,
                    state: str | None = None) -> dict[str, Any]:
        def answered() -> dict[str, Any] | None:
            response = self.get("/healthz")
            if response is None or response.status_code != status:
                return None
            document = dict(response.json())
            return document if state in (None, document["status"]) else None

        try:
            return wait_until(answered, timeout=timeout, interval=0.1,
                              message=f"/healthz {status}")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.output()}") from None


class WorkerLauncher:
    """Starts `python -m queue_jobs.worker` subprocesses, each on a free health port with a
    log file of its own under `logs`, and kills whatever is left at the end."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[WorkerProcess] = []

    def start(self, env: dict[str, str], args: Sequence[str]) -> WorkerProcess:
        port = free_port()
        environment = {key: value for key, value in os.environ.items()
                       if not key.startswith(("WORKER_", "PROMETHEUS_"))}
        environment.update({"WORKER_METRICS_PORT": str(port),
                            "FETCH_ALLOW_PRIVATE_NETWORKS": "true", **env})
        log = self.logs / f"worker-{len(self.started)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "queue_jobs.worker", *args], cwd=PROJECT_DIR,
                env=environment, stdout=sink, stderr=subprocess.STDOUT)
        worker = WorkerProcess(process, f"http://127.0.0.1:{port}", log)
        self.started.append(worker)
        return worker

    def kill_all(self) -> None:
        for worker in self.started:
            if worker.process.poll() is None:
                worker.process.kill()
            worker.process.wait(10)
