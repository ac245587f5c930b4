"""PostgreSQL goes down under the API and comes back: a dedicated server for this test only,
stopped and started again on the same data directory. In-process (Flask's test client) and
under the real gunicorn with a burst of concurrent clients."""

from __future__ import annotations

import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pgserver
import pytest
import requests

from queue_jobs.db.migrate import apply_migrations
from tests.integration.conftest import TEST_JWT_SECRET, start_gunicorn
from tests.integration.support import ApiClient, new_session, wait_until
from webapp import create_app

pytestmark = pytest.mark.slow

DB_WAIT_S = 2.0
MAX_503_S = 3.0
ENDPOINTS = ("status", "readyz", "create")
BURST_REQUESTS = 100
BURST_CONNECTIONS = 50
RETRY_AFTER_RANGE_S = range(1, 6)  # the jittered Retry-After of a 503 (docs/operations.md)


class DedicatedServer:
    """One pgserver data directory that can be stopped and started again."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.server: Any = None

    def start(self) -> None:
        self.server = pgserver.get_server(self.pgdata, cleanup_mode="stop")

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()  # pg_ctl stop (fast); this process holds the only handle
            self.server = None

    def uri(self) -> str:
        assert self.server is not None
        uri: str = self.server.get_uri("postgres")
        return uri


@pytest.fixture
def dedicated() -> Iterator[DedicatedServer]:
    # Not under tmp_path: as root, pgserver runs PostgreSQL as another user, which must
    # traverse the directories above; each pytest session that starts on this host takes
    # those rights off /tmp/pytest-of-root, and the server then fails with EACCES.
    with tempfile.TemporaryDirectory(prefix="outage-pg-") as scratch:
        server = DedicatedServer(Path(scratch) / "pgdata")
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def outage_api(dedicated: DedicatedServer) -> Iterator[ApiClient]:
    apply_migrations(dedicated.uri())
    client = ApiClient(create_app({"database_url": dedicated.uri(),
                                   "jwt_secret_key": TEST_JWT_SECRET, "db_wait_s": DB_WAIT_S}))
    try:
        yield client
    finally:
        client.close()


def test_the_api_answers_503_fast_while_postgres_is_down_and_recovers(
        dedicated: DedicatedServer, outage_api: ApiClient) -> None:
    api = outage_api
    session = new_session()
    job_id = api.create_analysis("https://example.com/", session)
    status_url = f"/api/v1/jobs/{job_id}/status"
    assert api.status(job_id, session)["status"] == "queued"
    uri_before = dedicated.uri()

    dedicated.stop()

    def send(name: str) -> tuple[str, Any, float]:
        client = api.app.test_client()  # one per thread
        started = time.monotonic()
        if name == "status":
            response = client.get(status_url, headers=session)
        elif name == "readyz":
            response = client.get("/readyz")
        else:
            response = client.post("/api/v1/jobs/website-analysis",
                                   json={"url": "https://example.com/"}, headers=session)
        return name, response, time.monotonic() - started

    # Three rounds; in each, the three endpoints at once (sequentially, 9 requests of up to
    # DB_WAIT_S each would make the outage, and so the pool's reconnect backoff, long).
    latencies: dict[str, list[float]] = {name: [] for name in ENDPOINTS}
    with ThreadPoolExecutor(max_workers=len(ENDPOINTS)) as executor:
        for _ in range(3):
            for name, response, elapsed in executor.map(send, ENDPOINTS):
                latencies[name].append(round(elapsed, 3))
                assert response.status_code == 503, (name, response.status_code,
                                                     response.data)
                assert response.is_json, (name, response.data)
                assert response.get_json()["errorCode"] == "QUEUE_UNAVAILABLE", name
                assert response.headers.get("Retry-After"), (name, dict(response.headers))
                assert elapsed < MAX_503_S, (name, elapsed)
    print(f"503 latencies (s): {latencies}")
    assert api.http.get("/healthz").status_code == 200

    dedicated.start()
    assert dedicated.uri() == uri_before  # same data directory, same socket

    def status_is_back() -> dict[str, Any] | None:
        response = api.http.get(status_url, headers=session)
        return response.get_json() if response.status_code == 200 else None

    recovered_at = time.monotonic()
    document = wait_until(status_is_back, timeout=20.0, interval=0.2,
                          message="status to answer 200 after the restart")
    print(f"recovered after {time.monotonic() - recovered_at:.2f}s")
    assert document["status"] == "queued"
    assert api.http.get("/readyz").status_code == 200


def test_a_burst_under_gunicorn_gets_fast_503s_and_recovery_is_immediate(
        dedicated: DedicatedServer) -> None:
    """100 requests over 50 connections (status polls, creates, lists) at a gunicorn host of
    2 processes x 8 threads while PostgreSQL is down: each a 503 within 3 s at the client."""
    apply_migrations(dedicated.uri())
    gunicorn, base = start_gunicorn(dedicated.uri(), processes=2, ACCESS_LOG="0",
                                    DB_WAIT_S="2.5")
    session = new_session()
    try:
        def ready() -> bool:
            try:
                return _get(f"{base}/readyz").status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(ready, timeout=30, message="gunicorn to be ready")
        created = requests.post(f"{base}/api/v1/jobs/website-analysis", headers=session,
                                json={"url": "https://example.com/"}, timeout=10)
        assert created.status_code == 201, created.text
        status_url = f"{base}/api/v1/jobs/{created.json()['jobId']}/status"
        for _ in range(20):  # both processes' pools hold connections that will break
            assert requests.get(status_url, headers=session, timeout=10).status_code == 200

        dedicated.stop()

        local = threading.local()

        def send(index: int) -> tuple[str, requests.Response, float]:
            if not hasattr(local, "http"):
                local.http = requests.Session()  # one keep-alive connection per client
            kind = ("status", "create", "list")[index % 3]
            started = time.monotonic()
            if kind == "status":
                response = local.http.get(status_url, headers=session, timeout=30)
            elif kind == "create":
                response = local.http.post(f"{base}/api/v1/jobs/website-analysis",
                                           headers=session, timeout=30,
                                           json={"url": "https://example.com/"})
            else:
                response = local.http.get(f"{base}/api/v1/jobs", headers=session, timeout=30)
            return kind, response, time.monotonic() - started

        with ThreadPoolExecutor(max_workers=BURST_CONNECTIONS) as clients:
            answers = list(clients.map(send, range(BURST_REQUESTS)))
        latencies = sorted(elapsed for _, _, elapsed in answers)
        print(f"503 latency under the burst: p50 {statistics.median(latencies):.3f}s, "
              f"max {latencies[-1]:.3f}s")
        retry_afters = set()
        for kind, response, elapsed in answers:
            assert response.status_code == 503, (kind, response.status_code, response.text)
            assert response.json()["errorCode"] == "QUEUE_UNAVAILABLE", (kind, response.text)
            retry_after = int(response.headers["Retry-After"])
            assert retry_after in RETRY_AFTER_RANGE_S, (kind, retry_after)
            retry_afters.add(retry_after)
            assert elapsed < MAX_503_S, (kind, elapsed)
        assert len(retry_afters) > 1, retry_afters  # spread out, not one value for all

        assert _get(f"{base}/healthz").status_code == 200  # needs no database
        assert _get(f"{base}/").status_code == 200  # nor does the demo page
        assert _get(f"{base}/static/jobs-client.js").status_code == 200  # nor static files
        not_ready = _get(f"{base}/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["errorCode"] == "QUEUE_UNAVAILABLE"
        assert "PostgreSQL" in not_ready.json()["error"], not_ready.text

        dedicated.start()
        restarted = time.monotonic()

        def status_answers() -> bool:
            return _get(status_url, headers=session).status_code == 200

        wait_until(status_answers, timeout=20, interval=0.05,
                   message="a status poll to succeed after the restart")
        first_success_s = time.monotonic() - restarted
        wait_until(lambda: all(status_answers() for _ in range(10)), timeout=20,
                   interval=0.05, message="every process to serve again")
        print(f"after the restart: first success in {first_success_s:.2f}s, "
              f"all processes in {time.monotonic() - restarted:.2f}s")
        assert first_success_s < 1.5
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait(20)


def _get(url: str, headers: dict[str, str] | None = None) -> requests.Response:
    """A fresh connection each time: either gunicorn process may answer."""
    return requests.get(url, timeout=10, headers={"Connection": "close", **(headers or {})})
