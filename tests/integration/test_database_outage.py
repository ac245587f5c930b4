"""PostgreSQL goes down under the API and comes back: a dedicated server for this test only,
stopped and started again on the same data directory."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pgserver
import pytest

from queue_jobs.db.migrate import apply_migrations
from tests.integration.conftest import TEST_JWT_SECRET
from tests.integration.support import ApiClient, new_session, wait_until
from webapp import create_app

pytestmark = pytest.mark.slow

DB_WAIT_S = 2.0
MAX_503_S = 3.0
ENDPOINTS = ("status", "readyz", "create")


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
def dedicated(tmp_path: Path) -> Iterator[DedicatedServer]:
    server = DedicatedServer(tmp_path / "pgdata")
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
