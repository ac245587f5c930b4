"""What operators read: whether the schema is current, what /metrics reads from PostgreSQL
at scrape time, and the ops dashboards (ops/dashboards/*.sql) run for the /ops page.

/metrics reads the job table's live counts, the live workers and the server's connections
at scrape time (`scrape_stats`): they are facts of the one database that no web process
sees happen (workers are other processes, connections are the server's, jobs change in
every process), so no process could count them as they change; reading them when
Prometheus asks costs three small reads per scrape and nothing per request, and every web
host reports the same truth (aggregate them with max, not sum). The scrape has its own
short statement timeout and never fails /metrics: while PostgreSQL is unreachable or slow
the database-read gauges are left out (`jobs_workers_live` absent is what the alert on it
watches) and the process's own counters, the 503s first, are still served.

The dashboards run in one read-only REPEATABLE READ transaction (one snapshot, so the
tables agree with each other) with a statement timeout; each query has its own savepoint,
so one that fails or times out is reported with an "error" and the others still answer.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from typing import Any

import psycopg

from queue_jobs.db import store
from queue_jobs.db.connections import Conn
from queue_jobs.db.migrate import latest_version
from queue_jobs.observability.dashboards import Dashboard
from queue_jobs.services.connections import DATABASE_UNAVAILABLE, ConnectionPool
from queue_jobs.services.jobs import LIVE_WORKER_S

log = logging.getLogger(__name__)

STATEMENT_TIMEOUT_MS = 5_000
# /metrics' statements: well inside a Prometheus scrape timeout (10 s by default), and a
# database that slow is better reported by the gauges' absence than by a late scrape.
SCRAPE_TIMEOUT_MS = 2_000
# Once the queries have taken this long, the rest are skipped: the answer stays well
# inside gunicorn's 60 s timeout however many dashboards there are.
BUDGET_S = 20.0
MAX_ROWS = 500  # per dashboard: the page is for glancing, not exporting


@dataclass(frozen=True)
class SchemaState:
    current: int  # the highest applied migration (0: never migrated)
    expected: int  # the highest migration this code ships

    @property
    def ready(self) -> bool:
        return self.current == self.expected


def schema_state(conn: Conn) -> SchemaState:
    try:
        applied = store.applied_migrations(conn)
    except psycopg.errors.UndefinedTable:  # never migrated
        applied = []
    return SchemaState(max(applied, default=0), latest_version())


@dataclass(frozen=True)
class ScrapeStats:
    """What /metrics reads from PostgreSQL, from one snapshot."""

    counts: list[dict[str, Any]]  # queued and running jobs by type and status
    steps: list[dict[str, Any]]  # last hour's step durations by type and step
    live_workers: int  # heartbeat younger than LIVE_WORKER_S
    connections: int  # the server's client connections, every database and role
    max_connections: int
    paused_types: frozenset[str] = frozenset()  # job types an operator paused (held on purpose)


def scrape_stats(pool: ConnectionPool) -> ScrapeStats | None:
    """None when PostgreSQL is unreachable (the pool logged it) or a statement overran
    SCRAPE_TIMEOUT_MS (logged here): /metrics then serves the in-process metrics alone."""
    try:
        with pool.connection() as conn, conn.transaction():
            store.begin_dashboard_snapshot(conn, SCRAPE_TIMEOUT_MS)
            capacity = store.scrape_capacity(conn, LIVE_WORKER_S)
            paused = frozenset(pause.type for pause in store.paused_job_types(conn))
            return ScrapeStats(store.active_job_counts(conn), store.recent_step_stats(conn),
                               **capacity, paused_types=paused)
    except psycopg.errors.QueryCanceled:  # an OperationalError: before the next clause
        log.warning("/metrics: the scrape's statements took over %d ms; the gauges read "
                    "from PostgreSQL are left out", SCRAPE_TIMEOUT_MS)
        return None
    except DATABASE_UNAVAILABLE:
        return None


def run_dashboards(conn: Conn,
                   boards: tuple[Dashboard, ...]) -> list[dict[str, Any]]:
    results = []
    deadline = time.monotonic() + BUDGET_S
    with conn.transaction():
        store.begin_dashboard_snapshot(conn, STATEMENT_TIMEOUT_MS)
        for board in boards:
            result: dict[str, Any] = {
                "name": board.name, "title": board.title, "chart": board.chart,
                "series": list(board.series), "scale": board.scale,
                "description": board.description, "columns": [], "labels": [], "units": [],
                "rows": []}
            if time.monotonic() > deadline:
                result["error"] = f"Skipped: the queries took over {BUDGET_S:g} s."
            else:
                result.update(_run_one(conn, board))
            results.append(result)
    return results


def _run_one(conn: Conn, board: Dashboard) -> dict[str, Any]:
    try:
        with conn.transaction(), conn.cursor() as cur:  # a savepoint: a failure stays here
            cur.execute(board.sql.encode())
            columns = [column.name for column in cur.description or ()]
            rows = cur.fetchmany(MAX_ROWS + 1)
    except psycopg.Error as error:
        if conn.broken:  # the database is gone: the whole answer is a 503
            raise
        log.warning("ops dashboard %s failed: %s", board.name, error)
        message = (str(error).strip().splitlines() or ["The query failed."])[0]
        return {"error": message, "errorCode": error.sqlstate}
    shown = [[json_value(value) for value in row] for row in rows[:MAX_ROWS]]
    # Named and typed next to the query (its `-- column:` lines), not guessed by the page.
    described = [board.column(name) for name in columns]
    return {"columns": columns, "labels": [c.label for c in described],
            "units": [c.unit for c in described], "rows": shown,
            "truncated": len(rows) > MAX_ROWS}


def json_value(value: Any) -> Any:
    """A database value as JSON: numbers stay numbers, times are ISO 8601, the rest text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time_of_day):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, dict):  # json and jsonb columns
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return str(value)  # UUID, inet, ranges...
