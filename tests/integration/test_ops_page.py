"""The ops page's API: /ops and /ops/data behind OPS_TOKEN, every ops/dashboards/*.sql run
read-only in one transaction, JSON-safe values, and one failing query not failing the rest.
The page in a real browser is in test_ops_browser.py."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from queue_jobs.observability.dashboards import DASHBOARD_DIR, Dashboard, dashboards
from queue_jobs.services import monitoring
from tests.integration.conftest import TEST_JWT_SECRET
from webapp import create_app
from webapp.views import ops

OPS_TOKEN = "ops-test-token-0123456789abcdef+/="  # base64 characters survive the fragment
STATIC_DIR = Path(__file__).resolve().parents[2] / "webapp" / "static"
OPS_ASSETS = ("ops.html", "ops.js", "ops.css")
CHARTS = {"throughput": "time-series", "failure_rate": "bars", "step_durations": "bars",
          "summary": "summary"}
ON_CALL_ORDER = ["summary", "queue_depth", "live_workers", "throughput", "failure_rate",
                 "stuck_jobs", "step_durations", "llm_usage", "usage_per_owner"]


def seed_jobs(db: psycopg.Connection[Any]) -> None:
    """Two queued and one running analysis, three finished content jobs with their step
    records, and one failed analysis: every chart has something to draw."""
    def job(status: str, type_: str = "website-analysis", error_code: str | None = None,
            step_ms: int | None = None) -> None:
        job_id = uuid.uuid4()
        db.execute(
            "INSERT INTO jobs (id, type, owner_session_id, input, status, error_code, "
            "created_at, run_started_at, finished_at) VALUES (%s, %s, 'sess_ops_page', '{}', "
            "%s, %s, now() - interval '2 minutes', "
            "CASE WHEN %s <> 'queued' THEN now() - interval '1 minute' END, "
            "CASE WHEN %s IN ('succeeded', 'failed') THEN now() END)",
            (job_id, type_, status, error_code, status, status))
        if step_ms is not None:
            db.execute("INSERT INTO job_steps (job_id, job_type, step, attempt, outcome, "
                       "duration_ms) VALUES (%s, %s, 'content', 1, 'succeeded', %s)",
                       (job_id, type_, step_ms))

    for status in ("queued", "queued", "running"):
        job(status)
    for step_ms in (100, 200, 300):
        job("succeeded", type_="content-generation", step_ms=step_ms)
    job("failed", error_code="LLM_ERROR")


def app_for(db_url: str, ops_token: str | None) -> Flask:
    return create_app({"database_url": db_url, "jwt_secret_key": TEST_JWT_SECRET,
                       "ops_token": ops_token})


@pytest.fixture
def client(db_url: str) -> Iterator[FlaskClient]:
    app = app_for(db_url, OPS_TOKEN)
    yield app.test_client()
    app.extensions["db_pool"].close()


def bearer(token: str = OPS_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {board["name"]: board for board in body["dashboards"]}


def records(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(zip(board["columns"], row, strict=True)) for row in board["rows"]]


@pytest.mark.parametrize("path", ["/ops", "/ops/data"])
def test_without_ops_token_the_page_is_absent(db_url: str, path: str) -> None:
    app = app_for(db_url, None)
    try:
        response = app.test_client().get(path, headers=bearer())
        assert response.status_code == 404
        assert response.get_json() == {"error": "Not found.", "errorCode": "NOT_FOUND"}
    finally:
        app.extensions["db_pool"].close()


def test_the_page_is_a_shell_under_a_strict_policy(client: FlaskClient) -> None:
    response = client.get("/ops")  # no token: the shell holds no data
    assert response.status_code == 200 and response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    page = response.get_data(as_text=True)
    assert '<script type="module" src="/static/ops.js"></script>' in page
    assert '<link rel="stylesheet" href="/static/ops.css">' in page
    # No inline script or style: every <script> has a src, no style attributes.
    assert re.findall(r"<script\b[^>]*>", page) == [
        '<script type="module" src="/static/ops.js">']
    assert "style=" not in page and "<style" not in page
    for name in OPS_ASSETS[1:]:
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and asset.get_data() == (STATIC_DIR / name).read_bytes()
        asset.close()
    assert client.get("/static/ops.js").mimetype == "text/javascript"


@pytest.mark.parametrize("name", OPS_ASSETS)
def test_the_assets_reference_nothing_outside_this_origin(name: str) -> None:
    text = (STATIC_DIR / name).read_text(encoding="utf-8")
    assert not re.findall(r"\b(?:https?|wss?|ftp):/+[\w.\[-]", text, re.IGNORECASE)
    assert not re.findall(r"""(?:src|href|action)\s*=\s*["']?//""", text, re.IGNORECASE)


@pytest.mark.parametrize("headers", [
    {}, bearer("wrong"), bearer(""), bearer(OPS_TOKEN + "x"), {"Authorization": OPS_TOKEN},
    {"Authorization": f"Basic {OPS_TOKEN}"}, bearer("caf\u00e9"),
], ids=["none", "wrong", "empty", "longer", "no-scheme", "basic", "non-ascii"])
def test_data_needs_the_token(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get("/ops/data", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["errorCode"] == "OPS_TOKEN_INVALID"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["Cache-Control"] == "no-store"


def test_data_runs_every_dashboard(client: FlaskClient, db: psycopg.Connection[Any]) -> None:
    seed_jobs(db)
    response = client.get("/ops/data", headers={"Authorization": f"bearer  {OPS_TOKEN} "})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = strict_json(response.get_data(as_text=True))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", body["generatedAt"])
    boards = by_name(body)
    # The declared order (each file's `-- order:`), the summary first; every file once.
    assert list(boards) == ON_CALL_ORDER
    assert set(boards) == {path.stem for path in DASHBOARD_DIR.glob("*.sql")}
    for board in body["dashboards"]:
        assert "error" not in board, board
        assert set(board) >= {"name", "title", "chart", "series", "scale", "description",
                              "columns", "labels", "units", "rows"}
        assert board["title"] and board["description"] and board["columns"]
        assert set(board["series"]) <= set(board["columns"])
        assert len(board["labels"]) == len(board["units"]) == len(board["columns"])
        assert all(len(row) == len(board["columns"]) for row in board["rows"])
    [summary] = records(boards["summary"])
    assert {key: summary[key] for key in ("queued", "running", "failed_last_hour",
                                          "live_workers")} == {
        "queued": 2, "running": 1, "failed_last_hour": 1, "live_workers": 0}
    failure_columns = dict(zip(boards["failure_rate"]["columns"],
                               zip(boards["failure_rate"]["labels"],
                                   boards["failure_rate"]["units"], strict=True), strict=True))
    assert failure_columns["share_of_finished"] == ("Share of finished", "percent")
    assert failure_columns["error_code"] == ("errorCode", None)
    assert boards["step_durations"]["scale"] == "log"
    assert boards["queue_depth"]["scale"] == "linear"
    for name, chart in CHARTS.items():
        assert boards[name]["chart"] == chart and boards[name]["series"]
        assert boards[name]["rows"], name
    depth = {row["type"]: row for row in records(boards["queue_depth"])}
    assert (depth["website-analysis"]["queued"], depth["website-analysis"]["running"]) == (2, 1)
    assert "content-generation" not in depth
    throughput = records(boards["throughput"])
    assert sum(row["created"] for row in throughput) == 7
    assert sum(row["finished"] for row in throughput) == 4
    assert all(isinstance(row["time"], str) for row in throughput)  # ISO 8601 text
    failures = {row["error_code"]: row for row in records(boards["failure_rate"])}
    assert failures["LLM_ERROR"]["failed"] == 1
    steps = {(row["type"], row["step"]): row for row in records(boards["step_durations"])}
    assert steps[("content-generation", "content")]["p50_ms"] == 200


def test_a_failing_query_is_reported_and_the_others_still_answer(
        client: FlaskClient, db: psycopg.Connection[Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    seed_jobs(db)

    def board(name: str, sql: str) -> Dashboard:
        return Dashboard(name, name, "table", (), "A test query.", sql)

    monkeypatch.setattr(monitoring, "STATEMENT_TIMEOUT_MS", 200)
    monkeypatch.setattr(ops, "dashboards", lambda: (
        board("broken", "SELECT 1/0"),
        board("slow", "SELECT pg_sleep(2)"),
        board("writes", "CREATE TABLE ops_probe (id int)"),
        *dashboards(),
    ))
    response = client.get("/ops/data", headers=bearer())
    assert response.status_code == 200
    boards = by_name(response.get_json())
    assert (boards["broken"]["errorCode"], boards["broken"]["rows"]) == ("22012", [])
    assert "division by zero" in boards["broken"]["error"]
    assert boards["slow"]["errorCode"] == "57014"  # statement timeout
    assert boards["writes"]["errorCode"] == "25006"  # read-only transaction
    assert db.execute("SELECT to_regclass('ops_probe')").fetchone() == (None,)
    depth = {row["type"]: row for row in records(boards["queue_depth"])}
    assert depth["website-analysis"]["queued"] == 2  # after the failures, on the savepoints


def test_queries_past_the_budget_are_skipped(client: FlaskClient,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitoring, "BUDGET_S", -1.0)
    response = client.get("/ops/data", headers=bearer())
    assert response.status_code == 200
    boards = response.get_json()["dashboards"]
    assert len(boards) == len(dashboards())
    assert all(b["error"].startswith("Skipped") and b["rows"] == [] for b in boards)


def test_values_are_json_safe(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    sql = ("SELECT timestamptz '2024-05-01 12:00:00+02' AS at, date '2024-05-01' AS day, "
           "1.25::numeric AS share, 4.000::numeric AS whole, 'NaN'::numeric AS nan_numeric, "
           "'Infinity'::float8 AS inf, 'a3bb189e-8bf9-3888-9912-ace4e6543002'::uuid AS id, "
           "interval '90 seconds' AS took, '{\"a\": [1, 2.5]}'::jsonb AS doc, "
           "ARRAY[1, 2] AS list, true AS flag, NULL::text AS nothing, '\\x0aff'::bytea AS raw")
    monkeypatch.setattr(ops, "dashboards", lambda: (
        Dashboard("types", "Types", "table", (), "Every kind of value.", sql),))
    response = client.get("/ops/data", headers=bearer())
    [board] = strict_json(response.get_data(as_text=True))["dashboards"]
    assert records(board) == [{
        "at": "2024-05-01T10:00:00+00:00", "day": "2024-05-01", "share": 1.25, "whole": 4,
        "nan_numeric": None, "inf": None, "id": "a3bb189e-8bf9-3888-9912-ace4e6543002",
        "took": 90.0, "doc": {"a": [1, 2.5]}, "list": [1, 2], "flag": True, "nothing": None,
        "raw": "0aff"}]


def test_methods_other_than_get_are_refused(client: FlaskClient) -> None:
    response = client.post("/ops/data", headers=bearer())
    assert response.status_code == 405
    assert response.get_json()["errorCode"] == "METHOD_NOT_ALLOWED"
