"""Logs are JSON lines: one per request (under the real gunicorn conf) and one per job
event, joined by request id and jobId, and never carrying a session id or a token."""

from __future__ import annotations

import io
import json
import logging
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from queue_jobs.observability.logs import JsonFormatter
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.website import FakeWebsite
from tests.integration.conftest import start_gunicorn
from tests.integration.support import (
    ApiClient,
    ThreadWorker,
    new_session,
    wait_until,
    wait_until_serving,
)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_gunicorn_writes_a_json_line_per_request_joined_to_its_job_events(
        db_url: str, website: FakeWebsite, tmp_path: Path) -> None:
    stderr = tmp_path / "gunicorn.log"
    with stderr.open("wb") as sink:
        gunicorn, base = start_gunicorn(db_url, processes=1, output=sink)
    session = new_session()
    try:
        wait_until_serving(base, timeout=20)
        created = requests.post(f"{base}/api/v1/jobs/website-analysis",
                                json={"url": website.url("/")}, timeout=5,
                                headers={**session, "X-Request-Id": "req-from-proxy-1"})
        assert created.status_code == 201
        assert created.headers["X-Request-Id"] == "req-from-proxy-1"
        job_id = created.json()["jobId"]
        missing = requests.get(f"{base}/api/v1/jobs/{uuid.uuid4()}/status", headers=session,
                               timeout=5)
        assert missing.status_code == 404
        assert len(missing.headers["X-Request-Id"]) == 32  # generated
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait(timeout=30)

    text = stderr.read_text()
    lines = json_lines(text)  # every line is JSON, gunicorn's own included
    assert any(line["logger"] == "gunicorn.error" for line in lines)
    requests_logged = [line for line in lines if line.get("event") == "request"]
    create_line = next(line for line in requests_logged
                       if line["requestId"] == "req-from-proxy-1")
    assert create_line | {"durationMs": 0} == {
        **create_line, "method": "POST", "route": "/api/v1/jobs/website-analysis",
        "status": 201, "ownerKind": "session", "errorCode": None, "durationMs": 0}
    assert create_line["durationMs"] > 0
    not_found = next(line for line in requests_logged if line["status"] == 404)
    assert (not_found["route"], not_found["errorCode"]) == (
        "/api/v1/jobs/<job_id>/status", "JOB_NOT_FOUND")
    created_event = next(line for line in lines if line.get("event") == "job.created")
    assert created_event["requestId"] == "req-from-proxy-1"
    assert (created_event["jobId"], created_event["ownerKind"]) == (job_id, "session")
    assert session["x-session-id"] not in text


@pytest.fixture
def captured_json_log() -> Iterator[io.StringIO]:
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield sink
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_worker_writes_one_json_line_per_job_event(
        captured_json_log: io.StringIO, api: ApiClient, worker: ThreadWorker,
        fake_llm: FakeOpenAI, website: FakeWebsite) -> None:
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    done = api.wait_for_status(job_id, session, {"succeeded", "failed"}, timeout=30)
    assert done["status"] == "succeeded", done

    def events() -> list[dict[str, Any]]:
        return [line for line in json_lines(captured_json_log.getvalue())
                if line.get("jobId") == job_id]

    # job.finished is written just after the row changes: wait for the line, not the row
    wait_until(lambda: any(e["event"] == "job.finished" for e in events()), timeout=10,
               message="the job.finished line")
    by_event = [(e["event"], e.get("step")) for e in events()]
    assert by_event == [("job.created", None), ("job.started", None),
                        ("step.finished", "analyze"), ("step.finished", "audiences"),
                        ("step.finished", "pitches"), ("step.finished", "images"),
                        ("job.finished", None)]
    steps = [e for e in events() if e["event"] == "step.finished"]
    assert all(e["outcome"] == "succeeded" and e["durationMs"] >= 0 and e["llmCalls"] >= 1
               for e in steps)
    finished = events()[-1]
    assert (finished["outcome"], finished["type"]) == ("succeeded", "website-analysis")
    assert finished["durationMs"] > 0
    assert session["x-session-id"] not in captured_json_log.getvalue()
