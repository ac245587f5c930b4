"""ops/grafana/job-service.json is current with ops/dashboards/*.sql, well formed, and every
panel's query runs on a real migrated database and returns the columns the panel draws."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from queue_jobs.observability.dashboards import dashboards
from tests import scripts

PROJECT_DIR = Path(__file__).resolve().parents[2]
BUILDER_PATH = PROJECT_DIR / "ops" / "grafana" / "build_dashboard.py"
COMMITTED = PROJECT_DIR / "ops" / "grafana" / "job-service.json"
DASHBOARDS = PROJECT_DIR / "ops" / "dashboards"
DATASOURCE = {"type": "grafana-postgresql-datasource", "uid": "${DS_POSTGRES}"}
PANEL_TYPES = {"table": "table", "time-series": "timeseries", "bars": "barchart",
               "summary": "stat"}
TARGET_FORMATS = {"table": "table", "time-series": "time_series", "bars": "table",
                  "summary": "table"}
NUMBERS = (int, float, Decimal)


builder = scripts.load(BUILDER_PATH)


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    assert COMMITTED.exists(), f"{COMMITTED} is missing: build it with {builder.REBUILD}"
    model: dict[str, Any] = json.loads(COMMITTED.read_text())
    return model


def _chart(panel: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The chart kind and value columns the panel's SQL file declares in its header."""
    lines = panel["targets"][0]["rawSql"].splitlines()
    assert lines[1].startswith("-- chart: "), panel["title"]
    kind, *rest = lines[1].removeprefix("-- chart: ").split(maxsplit=1)
    return kind, tuple(s.strip() for s in rest[0].split(",")) if rest else ()


def test_committed_json_is_what_the_sql_files_build() -> None:
    if COMMITTED.read_text() != builder.render():
        pytest.fail(f"{COMMITTED.relative_to(PROJECT_DIR)} is stale: ops/dashboards/*.sql "
                    f"changed since it was built. Rebuild it with: {builder.REBUILD}")


def test_one_panel_per_sql_file(committed: dict[str, Any]) -> None:
    files = {path.read_text(): path.name for path in DASHBOARDS.glob("*.sql")}
    panels = committed["panels"]
    assert sorted(p["targets"][0]["rawSql"] for p in panels) == sorted(files), (
        f"the panels are not the ops/dashboards/*.sql files; rebuild with {builder.REBUILD}")
    for panel in panels:
        title_line = panel["targets"][0]["rawSql"].splitlines()[0]
        assert title_line == f"-- title: {panel['title']}"
        assert panel["description"], files[panel["targets"][0]["rawSql"]]


def test_panels_are_well_formed(committed: dict[str, Any]) -> None:
    assert committed["schemaVersion"] >= 39 and committed["refresh"] == "10s"
    assert committed["time"] == {"from": "now-1h", "to": "now"}
    assert committed["uid"] and committed["id"] is None
    assert [(i["name"], i["type"], i["pluginId"]) for i in committed["__inputs"]] == [
        ("DS_POSTGRES", "datasource", "grafana-postgresql-datasource")]
    panels = committed["panels"]
    assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        kind, series = _chart(panel)
        assert panel["type"] == PANEL_TYPES[kind], panel["title"]
        assert panel["datasource"] == DATASOURCE
        grid = panel["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"} and grid["x"] + grid["w"] <= 24
        mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
        [target] = panel["targets"]
        assert target["datasource"] == DATASOURCE
        assert (target["refId"], target["rawQuery"], target["editorMode"]) == ("A", True, "code")
        assert target["format"] == TARGET_FORMATS[kind], panel["title"]
        if series and kind != "summary":  # the chart draws the listed columns, no other
            overrides = panel["fieldConfig"]["overrides"]
            assert overrides[-1]["matcher"]["options"]["names"] == list(series)
            assert overrides[-1]["properties"] == [
                {"id": "custom.hideFrom",
                 "value": {"legend": False, "tooltip": False, "viz": False}}]


def test_panels_follow_the_declared_order_with_names_for_people(
        committed: dict[str, Any]) -> None:
    """The /ops page's order (each file's `-- order:`), top to bottom and left to right;
    declared columns keep their label and unit."""
    panels = committed["panels"]
    assert [p["title"] for p in panels] == [d.title for d in dashboards()]
    assert panels[0]["type"] == "stat" and panels[0]["gridPos"]["w"] == 24
    places = [(p["gridPos"]["y"], p["gridPos"]["x"]) for p in panels]
    assert places == sorted(places)
    steps = next(p for p in panels if p["title"].startswith("Step durations"))
    assert steps["fieldConfig"]["defaults"]["custom"]["scaleDistribution"] == {
        "log": 10, "type": "log"}
    failures = next(p for p in panels if p["title"].startswith("Failures"))
    [share] = [o["properties"] for o in failures["fieldConfig"]["overrides"]
               if o["matcher"] == {"id": "byName", "options": "share_of_finished"}]
    assert share == [{"id": "displayName", "value": "Share of finished"},
                     {"id": "unit", "value": "percentunit"}]


def seed(db: psycopg.Connection[Any], *, status: str, type_: str = "website-analysis",
         owner_user: uuid.UUID | None = None, owner_session: str | None = "sess_graf_a",
         error_code: str | None = None, age: str = "5 minutes", silent: str = "1 minute",
         steps: dict[str, int] | None = None) -> None:
    """A job created `age` ago, last written `silent` ago (finished then, if it is), with a
    job_steps row per step of `steps` (name -> ms) and the LLM calls they made."""
    job_id = uuid.uuid4()
    finished = status in ("succeeded", "failed")
    started = status != "queued"
    db.execute(
        "INSERT INTO jobs (id, type, owner_user_id, owner_session_id, input, status, "
        "error_code, llm_calls, llm_tokens, created_at, updated_at, run_started_at, "
        "finished_at) VALUES (%s, %s, %s, %s, '{}', %s, %s, %s, %s, now() - %s::interval, "
        "now() - %s::interval, CASE WHEN %s THEN now() - %s::interval END, "
        "CASE WHEN %s THEN now() - %s::interval END)",
        (job_id, type_, owner_user, owner_session, status, error_code, len(steps or {}),
         100 * len(steps or {}), age, silent, started, age, finished, silent))
    for step, ms in (steps or {}).items():
        db.execute(
            "INSERT INTO job_steps (job_id, job_type, step, attempt, outcome, duration_ms, "
            "llm_calls, input_tokens, output_tokens, finished_at) "
            "VALUES (%s, %s, %s, 1, 'succeeded', %s, 1, 60, 40, now() - %s::interval)",
            (job_id, type_, step, ms, silent))


@pytest.fixture
def seeded(db: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    seed(db, status="queued", age="20 minutes", silent="20 minutes")
    seed(db, status="running", silent="10 minutes")
    seed(db, status="running", type_="content-generation", owner_user=uuid.uuid4(),
         owner_session=None)
    for content_ms in (1000, 2000, 3000):
        seed(db, status="succeeded", type_="content-generation", owner_session="sess_graf_b",
             steps={"content": content_ms, "visuals": 500})
    seed(db, status="succeeded", steps={"fetch": 200, "analyze": 100})
    seed(db, status="failed", error_code="LLM_ERROR")
    seed(db, status="failed", error_code="CANCELLED")
    db.execute(
        "INSERT INTO llm_usage_daily (day, job_type, step, model, calls, input_tokens, "
        "output_tokens) VALUES ((now() AT TIME ZONE 'UTC')::date, 'content-generation', "
        "'content', 'fake-model', 3, 180, 120), ((now() AT TIME ZONE 'UTC')::date - 1, "
        "'website-analysis', 'analyze', 'fake-model', 1, 60, 40)")
    worker_id = db.execute(
        "INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id").fetchone()
    assert worker_id is not None
    db.execute("INSERT INTO procrastinate_jobs (queue_name, task_name, status, worker_id) "
               "VALUES ('jobs', 'run_job', 'doing', %s)", worker_id)
    return db


def _run(db: psycopg.Connection[Any], sql: str) -> tuple[list[str], list[dict[str, Any]]]:
    with db.cursor() as cur:
        cur.execute(sql.encode())  # as Grafana sends it: the whole file, comments included
        assert cur.description is not None
        columns = [column.name for column in cur.description]
        return columns, [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def test_every_panel_query_returns_what_its_panel_draws(
        committed: dict[str, Any], seeded: psycopg.Connection[Any]) -> None:
    for panel in committed["panels"]:
        title = panel["title"]
        kind, series = _chart(panel)
        columns, rows = _run(seeded, panel["targets"][0]["rawSql"])
        assert columns and len(set(columns)) == len(columns), f"{title}: {columns}"
        missing = set(series) - set(columns)
        assert not missing, f"{title}: no column {sorted(missing)} in {columns}"
        if kind == "table":
            continue
        assert rows, f"{title}: nothing to draw from the seeded jobs"
        for row in rows:
            for name in series:
                assert isinstance(row[name], NUMBERS), f"{title}: {name}={row[name]!r}"
        assert any(row[name] for row in rows for name in series), f"{title}: all zero"
        if kind == "time-series":
            assert columns[0] == "time", f"{title}: the first column is {columns[0]!r}"
            assert all(isinstance(row["time"], datetime) for row in rows), title
        elif kind == "bars":  # each group is labelled by its label column, the xField
            assert columns[0] == "label" and isinstance(rows[0]["label"], str), title
            assert panel["options"]["xField"] == "label", title
