"""Every ops/dashboards/*.sql runs against a real jobs table and says the right thing."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

DASHBOARDS = Path(__file__).resolve().parents[2] / "ops" / "dashboards"
EXPECTED = {"queue_depth", "throughput", "failure_rate", "step_durations", "stuck_jobs",
            "usage_per_owner"}


def seed(db: psycopg.Connection[Any], *, status: str, owner: str = "sess_dash_a",
         type_: str = "website-analysis", error_code: str | None = None,
         durations: dict[str, int] | None = None, age: str = "1 minute",
         silent: str = "1 second") -> None:
    finished = status in ("succeeded", "failed")
    db.execute(
        "INSERT INTO jobs (id, type, owner_session_id, input, status, error_code, "
        "step_durations_ms, created_at, updated_at, finished_at) VALUES (%s, %s, %s, '{}', "
        "%s, %s, %s, now() - %s::interval, now() - %s::interval, "
        "CASE WHEN %s THEN now() - %s::interval END)",
        (uuid.uuid4(), type_, owner, status, error_code, json.dumps(durations or {}), age,
         silent, finished, silent))


def run(db: psycopg.Connection[Any], name: str) -> list[dict[str, Any]]:
    with db.cursor(row_factory=dict_row) as cur:
        cur.execute((DASHBOARDS / f"{name}.sql").read_bytes())
        return cur.fetchall()


@pytest.fixture
def seeded(db: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    seed(db, status="queued", age="20 minutes", silent="20 minutes")  # stuck in the queue
    seed(db, status="running", silent="10 minutes")  # stuck running
    seed(db, status="running", type_="content-generation")
    for content_ms in (1000, 2000, 3000, 4000):
        seed(db, status="succeeded", type_="content-generation", owner="sess_dash_b",
             durations={"content": content_ms, "visuals": 500, "save": 10})
    seed(db, status="failed", error_code="LLM_ERROR")
    seed(db, status="failed", error_code="CANCELLED")
    seed(db, status="succeeded", durations={"analyze": 100})
    return db


def test_every_dashboard_file_is_known_and_runs(seeded: psycopg.Connection[Any]) -> None:
    assert {path.stem for path in DASHBOARDS.glob("*.sql")} == EXPECTED
    for name in sorted(EXPECTED):
        run(seeded, name)  # each is one plain SELECT that PostgreSQL accepts


def test_queue_depth_and_stuck_jobs(seeded: psycopg.Connection[Any]) -> None:
    depth = {row["type"]: row for row in run(seeded, "queue_depth")}
    assert (depth["website-analysis"]["queued"], depth["website-analysis"]["running"]) == (1, 1)
    assert depth["website-analysis"]["oldest_queued_s"] >= 20 * 60 - 5
    assert (depth["content-generation"]["queued"], depth["content-generation"]["running"]) == (
        0, 1)
    stuck = run(seeded, "stuck_jobs")
    assert sorted(row["status"] for row in stuck) == ["queued", "running"]


def test_throughput_failure_rate_and_step_durations(seeded: psycopg.Connection[Any]) -> None:
    finished = {(row["type"], row["status"]): row["jobs"] for row in run(seeded, "throughput")}
    assert finished == {("content-generation", "succeeded"): 4,
                        ("website-analysis", "failed"): 2, ("website-analysis", "succeeded"): 1}
    failures = {row["error_code"]: row for row in run(seeded, "failure_rate")}
    assert set(failures) == {"LLM_ERROR", "CANCELLED"}
    assert float(failures["LLM_ERROR"]["share_of_finished"]) == pytest.approx(1 / 3, abs=1e-4)
    steps = {(row["type"], row["step"]): row for row in run(seeded, "step_durations")}
    content = steps[("content-generation", "content")]
    assert (content["runs"], content["mean_ms"], content["p50_ms"], content["p95_ms"]) == (
        4, 2500, 2000, 4000)
    assert steps[("website-analysis", "analyze")]["runs"] == 1


def test_usage_per_owner(seeded: psycopg.Connection[Any]) -> None:
    usage = {row["owner"]: row for row in run(seeded, "usage_per_owner")}
    assert (usage["sess_dash_a"]["created"], usage["sess_dash_a"]["active"],
            usage["sess_dash_a"]["failed"]) == (6, 3, 2)
    assert usage["sess_dash_b"]["owner_kind"] == "session" and usage["sess_dash_b"]["created"] == 4
