"""The worker entrypoint as deployed: `python -m queue_jobs.worker` in a subprocess, its
/healthz judged by the heartbeat row in procrastinate_workers, its /metrics, SIGTERM."""

from __future__ import annotations

import re
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.fakes.website import FakeWebsite
from tests.integration.support import (
    ApiClient,
    WorkerLauncher,
    WorkerProcess,
    new_session,
    wait_until,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def start_worker(db_url: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    launcher = WorkerLauncher(tmp_path)

    def start(**env: str) -> WorkerProcess:
        return launcher.start({"DATABASE_URL": db_url, "LLM_PROVIDER": "offline", **env},
                              ["--concurrency", "1"])

    yield start
    launcher.kill_all()


def _worker_rows(db_url: str) -> list[int]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM procrastinate_workers")]


def _sample(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    found = []
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match and match.group(1) == name:
            found.append((dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or "")),
                          float(match.group(3))))
    return found


def test_beating_worker_is_healthy_serves_metrics_and_stops_on_sigterm(
        start_worker: Callable[..., WorkerProcess], db_url: str) -> None:
    worker = start_worker(WORKER_HEARTBEAT_S="0.5", WORKER_STALLED_AFTER_S="3")
    healthy = worker.wait_health(200)
    assert healthy["status"] == "ok"
    assert _worker_rows(db_url) == [healthy["workerId"]]
    assert 0 <= healthy["heartbeatAgeS"] < 3

    # Healthy for longer than the stalled threshold: the loop keeps beating.
    since = time.monotonic()

    def outlived_threshold() -> bool:
        response = worker.get("/healthz")
        assert response is not None and response.status_code == 200, \
            (response and response.text, worker.output())
        assert response.json()["heartbeatAgeS"] < 3
        return time.monotonic() - since > 4

    wait_until(outlived_threshold, timeout=15, interval=0.25,
               message="the worker to outlive its stalled threshold")

    metrics = worker.get("/metrics")
    assert metrics is not None and metrics.status_code == 200
    assert metrics.headers["Content-Type"].startswith("text/plain")
    [(labels, age)] = _sample(metrics.text, "jobs_worker_heartbeat_age_seconds")
    assert labels == {} and 0 <= age < 3
    assert _sample(metrics.text, "jobs_worker_info") == [
        ({"worker_id": str(healthy["workerId"])}, 1.0)]
    assert _sample(metrics.text, "process_resident_memory_bytes")  # in-process registry

    missing = worker.get("/nope")
    assert missing is not None and missing.status_code == 404
    head = worker.get("/healthz", method="HEAD")
    assert head is not None and head.status_code == 200 and head.content == b""

    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=20) == 0, worker.output()
    assert _worker_rows(db_url) == []  # unregistered on its way out
    assert "SIGTERM: stopping" in worker.output()


def test_stale_heartbeat_answers_503_while_the_process_still_serves(
        start_worker: Callable[..., WorkerProcess], db_url: str) -> None:
    # Registered (a fresh row), then no beat for a minute: stale after 2 s.
    worker = start_worker(WORKER_HEARTBEAT_S="60", WORKER_STALLED_AFTER_S="2")
    healthy = worker.wait_health(200)
    stale = worker.wait_health(503, timeout=10)
    assert stale["status"] == "unhealthy"
    assert stale["workerId"] == healthy["workerId"]
    assert stale["heartbeatAgeS"] >= 2
    assert "heartbeat" in stale["reason"] and "not beating" in stale["reason"]
    metrics = worker.get("/metrics")
    assert metrics is not None
    [(_, age)] = _sample(metrics.text, "jobs_worker_heartbeat_age_seconds")
    assert age >= 2

    # Its row gone (another worker pruned it as stalled): still dead, another reason.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM procrastinate_workers WHERE id = %s", (healthy["workerId"],))
    gone = worker.wait_health(503)
    assert "gone from procrastinate_workers" in gone["reason"]


def test_unreachable_database_answers_503_with_the_reason_then_200_again(
        start_worker: Callable[..., WorkerProcess], db_url: str) -> None:
    worker = start_worker(WORKER_HEARTBEAT_S="0.5", WORKER_STALLED_AFTER_S="3")
    worker.wait_health(200)
    name = conninfo_to_dict(db_url)["dbname"]
    # New connections refused (superusers included); the worker's open ones stay.
    maintenance = psycopg.connect(make_conninfo(db_url, dbname="postgres"), autocommit=True)
    maintenance.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        # The worker cannot work (it waits for the database by itself): 503, with why.
        response = worker.get("/healthz")
        assert response is not None and response.status_code == 503, worker.output()
        assert response.json()["status"] == "unhealthy"
        assert response.json()["reason"].startswith("database unreachable: ")
        metrics = worker.get("/metrics")
        assert metrics is not None and metrics.status_code == 200
        assert _sample(metrics.text, "jobs_worker_heartbeat_age_seconds") == []
    finally:
        maintenance.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        maintenance.close()
    worker.wait_health(200, state="ok")


def test_taken_port_fails_the_start(start_worker: Callable[..., WorkerProcess]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        worker = start_worker(WORKER_METRICS_PORT=str(taken.getsockname()[1]))
        assert worker.process.wait(timeout=20) == 1
    assert "cannot serve /healthz" in worker.output()


def test_the_process_runs_jobs_and_counts_them_in_its_own_registry(
        start_worker: Callable[..., WorkerProcess], api: ApiClient, website: FakeWebsite,
        tmp_path: Path) -> None:
    # The web side's multiprocess directory, as a shared environment file would pass it.
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    worker = start_worker(WORKER_HEARTBEAT_S="0.5", WORKER_STALLED_AFTER_S="3",
                          PROMETHEUS_MULTIPROC_DIR=str(multiproc))
    worker.wait_health(200)
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    done = api.wait_for_status(job_id, session, {"succeeded", "failed"}, timeout=40)
    assert done["status"] == "succeeded", (done, worker.output())
    assert done["result"]["metadata"]["provider"] == "offline"
    metrics = worker.get("/metrics")
    assert metrics is not None
    assert ({"type": "website-analysis", "outcome": "succeeded"}, 1.0) in _sample(
        metrics.text, "jobs_finished_total")
    assert list(multiproc.iterdir()) == []  # nothing went to the web side's files
