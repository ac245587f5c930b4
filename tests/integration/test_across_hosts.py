"""Live status across hosts: two web hosts and two worker hosts as separate processes on one
PostgreSQL. A job created on web A and run by a worker host streams to a client of web B,
and is cancelled through web B; nothing is shared but the database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.website import FakeWebsite
from tests.integration.conftest import start_gunicorn
from tests.integration.support import (
    SseReader,
    WorkerLauncher,
    new_session,
    wait_until,
    wait_until_serving,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def web_hosts(db_url: str) -> Iterator[tuple[str, str]]:
    started = [start_gunicorn(db_url, processes=1, LIVE_KEEPALIVE_S="1") for _ in range(2)]
    try:
        for _process, base in started:
            wait_until_serving(base)
        yield started[0][1], started[1][1]
    finally:
        for process, _base in started:
            process.terminate()
            process.wait(20)


@pytest.fixture
def worker_hosts(db_url: str, fake_llm: FakeOpenAI, tmp_path: Path) -> Iterator[list[Any]]:
    launcher = WorkerLauncher(tmp_path)
    env = {"DATABASE_URL": db_url, "LLM_PROVIDER": "openai", "OPENAI_API_KEY": "test-key",
           "OPENAI_BASE_URL": fake_llm.base_url, "WORKER_HEARTBEAT_S": "0.5"}
    try:
        yield [launcher.start(env, ["--concurrency", "1"]) for _ in range(2)]
    finally:
        launcher.kill_all()


def test_a_job_from_web_a_run_by_a_worker_host_streams_to_web_b_and_is_cancelled_there(
        web_hosts: tuple[str, str], worker_hosts: list[Any], fake_llm: FakeOpenAI,
        website: FakeWebsite, db_url: str) -> None:
    web_a, web_b = web_hosts
    for worker in worker_hosts:
        worker.wait_health(200)
    fake_llm.set_delay("chat:audiences", 30)  # the job stays running until cancelled
    session = new_session()
    created = requests.post(f"{web_a}/api/v1/jobs/website-analysis",
                            json={"url": website.url("/")}, headers=session, timeout=10)
    assert created.status_code == 201, created.text
    job_id = created.json()["jobId"]

    stream = SseReader(web_b, job_id, session)
    assert stream.response.status_code == 200
    documents = []
    while (event := stream.next_event()) is not None:
        documents.append(event.document)
        if event.document["currentStep"] == "Generating audiences...":
            break
    assert documents and documents[-1]["status"] == "running", documents
    with psycopg.connect(db_url, autocommit=True) as conn:
        ran_by = conn.execute(
            "SELECT pj.worker_id FROM jobs JOIN procrastinate_jobs pj ON pj.id = jobs.dispatch_id "
            "WHERE jobs.id = %s", (job_id,)).fetchone()
        workers = {row[0] for row in conn.execute("SELECT id FROM procrastinate_workers")}
    assert ran_by is not None and ran_by[0] in workers and len(workers) == 2

    cancelled = requests.post(f"{web_b}/api/v1/jobs/{job_id}/cancel", headers=session,
                              timeout=10)
    assert cancelled.status_code == 200
    last = None
    while (event := stream.next_event()) is not None:
        last = event.document
    assert last is not None and last["status"] == "failed", last
    assert last["errorCode"] == "CANCELLED"
    # web A, which never streamed it, answers the same
    wait_until(lambda: requests.get(f"{web_a}/api/v1/jobs/{job_id}/status", headers=session,
                                    timeout=10).json() == last,
               message="web A to answer the cancelled document")
