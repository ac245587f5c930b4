"""Workers live through PostgreSQL outages: a dedicated server for each test, stopped and
started again under real worker processes (`python -m queue_jobs.worker`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from queue_jobs.db.migrate import apply_migrations
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.website import FakeWebsite
from tests.integration.conftest import PROJECT_DIR, TEST_JWT_SECRET
from tests.integration.support import ApiClient, free_port, new_session, wait_until
from tests.integration.test_database_outage import DedicatedServer, dedicated  # noqa: F401
from tests.integration.test_worker_process import WorkerLauncher, WorkerProcess
from webapp import create_app

pytestmark = pytest.mark.slow

GRACE_S = 2.0
STALLED_AFTER_S = 3.0
OUTAGE_S = 5.0  # longer than STALLED_AFTER_S: a heartbeat goes stale meanwhile
PICKUP_S = 5.0


@pytest.fixture
def outage_api(dedicated: DedicatedServer) -> Iterator[ApiClient]:  # noqa: F811
    apply_migrations(dedicated.uri())
    client = ApiClient(create_app({"database_url": dedicated.uri(),
                                   "jwt_secret_key": TEST_JWT_SECRET, "db_wait_s": 1.0}))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def start_worker(dedicated: DedicatedServer, fake_llm: FakeOpenAI,  # noqa: F811
                 tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    launcher = WorkerLauncher(tmp_path)
    uri = dedicated.uri()  # the same after a restart (same data directory and socket)
    environment = {
        "DATABASE_URL": uri, "LLM_PROVIDER": "openai", "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": fake_llm.base_url, "RETRY_BACKOFF_S": "0.05",
        "WORKER_HEARTBEAT_S": "0.5", "WORKER_STALLED_AFTER_S": str(STALLED_AFTER_S),
        "REAPER_INTERVAL_S": "1", "WORKER_SHUTDOWN_GRACE_S": str(GRACE_S),
        "LOG_FORMAT": "text"}

    def start(*args: str) -> WorkerProcess:
        return launcher.start(environment, args)

    yield start
    launcher.kill_all()


def _job_row(uri: str, job_id: str) -> dict[str, Any]:
    with psycopg.connect(uri, autocommit=True) as conn:
        row = conn.execute("SELECT status, dispatch_id, attempt, lost_runs FROM jobs "
                           "WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return dict(zip(("status", "dispatch_id", "attempt", "lost_runs"), row, strict=True))


def _create(api: ApiClient, url: str, session: dict[str, str]) -> str:
    """A job, as soon as the API can create one again (it answers 503 while its pool
    reconnects)."""
    def created() -> str | None:
        response = api.http.post("/api/v1/jobs/website-analysis", json={"url": url},
                                 headers=session)
        return str(response.get_json()["jobId"]) if response.status_code == 201 else None

    return wait_until(created, timeout=20, interval=0.1, message="the API to create a job")


def _outage(dedicated: DedicatedServer, workers: list[WorkerProcess]) -> None:  # noqa: F811
    """Stops PostgreSQL until OUTAGE_S have passed; meanwhile each worker's /healthz says
    503 with the reason."""
    stopped_at = time.monotonic()
    dedicated.stop()
    for worker in workers:
        down = worker.wait_health(503, timeout=10)
        assert down["reason"].startswith("database unreachable: "), down
    # The outage itself is the point here: its length is chosen, not waited for.
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))
    for worker in workers:
        assert worker.process.poll() is None, f"worker exited:\n{worker.output()}"


def test_workers_ride_out_an_outage_and_a_running_job_finishes_unharmed(
        dedicated: DedicatedServer, outage_api: ApiClient,  # noqa: F811
        start_worker: Callable[..., WorkerProcess], fake_llm: FakeOpenAI,
        website: FakeWebsite) -> None:
    runner = start_worker("--queue", "jobs", "--concurrency", "2")
    # The reaper on another worker, which judges the runner's silence.
    reaper = start_worker("--queue", "maintenance", "--concurrency", "1")
    for worker in (runner, reaper):
        worker.wait_health(200)
    session = new_session()
    # The step's LLM call answers in the middle of the outage: its checkpoint must wait.
    fake_llm.set_delay("chat:audiences", 2.0)
    job_id = _create(outage_api, website.url("/"), session)
    fake_llm.wait_for_calls("chat:audiences", 1, timeout=20)
    before = _job_row(dedicated.uri(), job_id)
    assert before["status"] == "running"

    _outage(dedicated, [runner, reaper])
    dedicated.start()
    back_at = time.monotonic()

    for worker in (runner, reaper):
        assert worker.wait_health(200, timeout=10)["status"] == "ok"
    fake_llm.set_delay("chat:audiences", 0)
    # A new job is taken within PICKUP_S of its creation (no wait for a poll).
    second = _create(outage_api, website.url("/"), session)
    created_at = time.monotonic()
    outage_api.wait_for_status(second, session, {"running", "succeeded"}, timeout=PICKUP_S)
    taken_at = time.monotonic()
    print(f"new job taken {taken_at - created_at:.2f} s after its creation, "
          f"{taken_at - back_at:.2f} s after PostgreSQL came back")

    for each in (job_id, second):
        done = outage_api.wait_for_status(each, session, {"succeeded", "failed"}, timeout=30)
        assert done["status"] == "succeeded", (done, runner.output())
    after = _job_row(dedicated.uri(), job_id)
    # One run: never re-dispatched, no lost run charged, the same attempt.
    assert (after["dispatch_id"], after["attempt"], after["lost_runs"]) == (
        before["dispatch_id"], before["attempt"], 0), (after, reaper.output())
    assert fake_llm.calls("chat:audiences") == 2  # one per job: nothing ran twice
    for worker in (runner, reaper):
        assert worker.process.poll() is None, worker.output()


def test_sigterm_during_an_outage_exits_0_in_time_and_the_job_is_not_charged(
        dedicated: DedicatedServer, outage_api: ApiClient,  # noqa: F811
        start_worker: Callable[..., WorkerProcess], fake_llm: FakeOpenAI,
        website: FakeWebsite) -> None:
    runner = start_worker("--queue", "jobs", "--concurrency", "1")
    runner.wait_health(200)
    session = new_session()
    fake_llm.set_delay("chat:audiences", 60)  # still running when the worker is stopped
    job_id = _create(outage_api, website.url("/"), session)
    fake_llm.wait_for_calls("chat:audiences", 1, timeout=20)
    before = _job_row(dedicated.uri(), job_id)

    dedicated.stop()
    runner.wait_health(503, timeout=10)
    signalled_at = time.monotonic()
    runner.process.send_signal(signal.SIGTERM)
    code = runner.process.wait(timeout=GRACE_S + 15)
    took = time.monotonic() - signalled_at
    print(f"stopped {took:.2f} s after SIGTERM (grace {GRACE_S} s)")
    assert code == 0, runner.output()
    assert took <= GRACE_S + 5, runner.output()

    dedicated.start()
    fake_llm.set_delay("chat:audiences", 0)
    start_worker()  # all queues: the reaper finds the run, a worker resumes it
    done = outage_api.wait_for_status(job_id, session, {"succeeded", "failed"}, timeout=40)
    assert done["status"] == "succeeded", done
    after = _job_row(dedicated.uri(), job_id)
    assert after["dispatch_id"] != before["dispatch_id"]  # re-dispatched by the reaper
    assert (after["attempt"], after["lost_runs"]) == (before["attempt"], 0), after


def test_make_run_keeps_running_across_a_restart_of_an_external_database(
        dedicated: DedicatedServer, tmp_path: Path) -> None:  # noqa: F811
    port, worker_port = free_port(), free_port()
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("WORKER_", "PROMETHEUS_", "OPS_"))}
    environment.update({
        "DATABASE_URL": dedicated.uri(), "PORT": str(port),
        "WORKER_METRICS_PORT": str(worker_port), "WORKER_HEARTBEAT_S": "0.5",
        "WORKER_STALLED_AFTER_S": str(STALLED_AFTER_S), "LLM_PROVIDER": "offline",
        "JWT_SECRET_KEY": TEST_JWT_SECRET, "WEB_CONCURRENCY": "1", "LOG_FORMAT": "text"})
    log = tmp_path / "make-run.log"
    with log.open("wb") as sink:
        make_run = subprocess.Popen([sys.executable, "ops/run_dev.py"], cwd=PROJECT_DIR,
                                    env=environment, stdout=sink, stderr=subprocess.STDOUT)
    worker = WorkerProcess(make_run, f"http://127.0.0.1:{worker_port}", log)
    try:
        wait_until(lambda: "API ready at" in log.read_text(errors="replace"), timeout=90,
                   interval=0.2, message="make run to be ready")
        _outage(dedicated, [worker])
        dedicated.start()
        worker.wait_health(200, timeout=15)

        def api_ready() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).ok
            except requests.RequestException:
                return False

        wait_until(api_ready, timeout=20, interval=0.2, message="the API to be ready again")
        assert make_run.poll() is None, worker.output()
        assert "the worker exited" not in log.read_text(errors="replace")
    finally:
        make_run.send_signal(signal.SIGINT)
        assert make_run.wait(timeout=40) == 0, worker.output()


def test_a_worker_started_while_the_database_is_down_waits_for_it(
        dedicated: DedicatedServer, outage_api: ApiClient,  # noqa: F811
        start_worker: Callable[..., WorkerProcess], website: FakeWebsite) -> None:
    dedicated.stop()
    worker = start_worker("--concurrency", "1")
    starting = worker.wait_health(503, timeout=20)
    assert "starting" in starting["reason"], starting
    # It keeps waiting (probing at its backoff) rather than exiting.
    wait_until(lambda: "database unreachable" in worker.output(), timeout=20,
               message="the worker to log that it waits")
    assert worker.process.poll() is None, worker.output()
    dedicated.start()
    worker.wait_health(200, timeout=15)
    session = new_session()
    job_id = _create(outage_api, website.url("/"), session)
    done = outage_api.wait_for_status(job_id, session, {"succeeded", "failed"}, timeout=30)
    assert done["status"] == "succeeded", (done, worker.output())
