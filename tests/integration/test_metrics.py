"""GET /metrics: job counts and queue depth from the table, live workers and the server's
connections, HTTP latency per route, the sum over gunicorn's processes under the real
gunicorn configuration, and a scrape that still answers while PostgreSQL is slow or gone."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import requests
from prometheus_client import REGISTRY

from queue_jobs.services import pauses
from tests.fakes.website import FakeWebsite
from tests.integration.conftest import start_gunicorn
from tests.integration.support import ApiClient, free_port, new_session, wait_until

LOCK_HELD_S = 7


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the Prometheus text (labels in any order)."""
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return None


def test_metrics_count_jobs_and_time_requests_by_route(api: ApiClient,
                                                       website: FakeWebsite) -> None:
    def created_so_far() -> float:
        # A process-wide counter: other tests in this process have counted before.
        text = api.http.get("/metrics").get_data(as_text=True)
        return sample(text, "jobs_created_total", type="website-analysis") or 0.0

    before = created_so_far()
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    api.status(job_id, session)
    assert api.http.open("/healthz", method="BREW-7f3a").status_code == 405
    response = api.http.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert response.headers["Content-Type"].count("charset") == 1
    text = response.get_data(as_text=True)
    assert sample(text, "jobs_created_total", type="website-analysis") == before + 1
    assert sample(text, "jobs_active", type="website-analysis", status="queued") == 1
    assert sample(text, "jobs_queue_depth", type="website-analysis") == 1
    oldest = sample(text, "jobs_oldest_queued_seconds", type="website-analysis")
    assert oldest is not None and 0 <= oldest < 60
    # The route's pattern, not the job's path: ids do not become label values.
    polled = sample(text, "http_request_duration_seconds_count", method="GET",
                    route="/api/v1/jobs/<job_id>/status", status="200")
    assert polled is not None and polled >= 1
    assert job_id not in text
    # Nor do made-up methods: any token is one, and the label set must stay bounded.
    brewed = sample(text, "http_request_duration_seconds_count", method="other",
                    route="unmatched", status="405")
    assert brewed is not None and brewed >= 1 and "brew-7f3a" not in text.lower()


def test_metrics_count_live_workers_and_the_servers_connections(
        api: ApiClient, db: psycopg.Connection[Any]) -> None:
    db.execute("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now()), (now()), "
               "(now() - interval '31 seconds'), (now() - interval '1 hour')")
    text = api.http.get("/metrics").get_data(as_text=True)
    assert sample(text, "jobs_workers_live") == 2
    row = db.execute("SELECT current_setting('max_connections')::int").fetchone()
    assert row is not None and sample(text, "jobs_db_max_connections") == row[0]
    # At least this test's own connection and the API's; the shared server has others.
    connections = sample(text, "jobs_db_connections")
    assert connections is not None and 2 <= connections <= row[0]


def test_metrics_say_which_job_types_are_paused(api: ApiClient,
                                                 db: psycopg.Connection[Any]) -> None:
    # JobsQueuedTooLong leaves a paused type out (ops/prometheus/alerts.yml).
    pauses.pause_job_type(db, "content-generation", "test", "provider down")
    text = api.http.get("/metrics").get_data(as_text=True)
    assert sample(text, "jobs_type_paused", type="content-generation") == 1
    assert sample(text, "jobs_type_paused", type="website-analysis") == 0


def test_a_slow_database_leaves_its_gauges_out_of_the_scrape(
        api: ApiClient, db_url: str, db: psycopg.Connection[Any]) -> None:
    def hold_the_workers_table() -> None:  # for LOCK_HELD_S, then its transaction ends
        with psycopg.connect(db_url) as blocker:
            blocker.execute("LOCK TABLE procrastinate_workers IN ACCESS EXCLUSIVE MODE")
            blocker.execute("SELECT pg_sleep(%s)", (LOCK_HELD_S,))

    holder = threading.Thread(target=hold_the_workers_table)
    holder.start()
    try:
        wait_until(lambda: db.execute(
            "SELECT 1 FROM pg_locks WHERE relation = 'procrastinate_workers'::regclass "
            "AND mode = 'AccessExclusiveLock' AND granted").fetchone(), timeout=10,
            message="the lock to be held")
        started = time.monotonic()
        response = api.http.get("/metrics")
        took = time.monotonic() - started
    finally:
        holder.join()
    assert response.status_code == 200
    assert sample(response.get_data(as_text=True), "jobs_workers_live") is None
    assert 1.5 < took < LOCK_HELD_S - 1, took  # the scrape's own 2 s timeout, not the lock


def test_metrics_answer_while_postgresql_is_unreachable(
        api_factory: Callable[..., ApiClient]) -> None:
    api = api_factory(database_url=f"postgresql://127.0.0.1:{free_port()}/gone"
                                   "?connect_timeout=2")
    labels = {"method": "GET", "route": "/readyz", "status": "503"}
    before = REGISTRY.get_sample_value("http_request_duration_seconds_count", labels) or 0
    assert api.http.get("/readyz").status_code == 503
    started = time.monotonic()
    response = api.http.get("/metrics")
    assert response.status_code == 200 and time.monotonic() - started < 5
    text = response.get_data(as_text=True)
    # The 503s an outage causes are what the alerts need to see most.
    assert sample(text, "http_request_duration_seconds_count", **labels) == before + 1
    assert sample(text, "jobs_workers_live") is None


def test_gunicorn_processes_are_summed(db_url: str) -> None:
    """Under webapp/gunicorn_conf.py as it is (it chooses the multiprocess directory itself)."""
    gunicorn, base = start_gunicorn(db_url, processes=2, ACCESS_LOG="0")
    served = 0

    def healthz() -> bool:
        nonlocal served
        try:
            ok = requests.get(f"{base}/healthz", timeout=10).status_code == 200
        except (requests.ConnectionError, requests.Timeout):
            return False
        served += ok
        return ok

    def workers() -> set[int]:
        children = Path(f"/proc/{gunicorn.pid}/task/{gunicorn.pid}/children").read_text()
        return {int(pid) for pid in children.split()}

    try:
        wait_until(healthz, timeout=20, message="gunicorn to answer")
        for _ in range(10):
            assert healthz()
        first = workers()
        assert len(first) == 2
        for pid in first:  # replaced by fresh processes, as after max_requests or a crash
            os.kill(pid, signal.SIGTERM)
        wait_until(lambda: len(workers() - first) == 2 and healthz(), timeout=20,
                   message="new worker processes to serve")
        for _ in range(10):
            assert healthz()
        text = requests.get(f"{base}/metrics", timeout=5).text
        # Every request counted once, whichever process served it, the gone ones included.
        assert sample(text, "http_request_duration_seconds_count", method="GET",
                      route="/healthz", status="200") == served
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait(20)
