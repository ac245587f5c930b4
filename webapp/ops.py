"""The read-only ops page: every ops/dashboards/*.sql, behind OPS_TOKEN.

`GET /ops` is the page shell (webapp/static/ops.html, ops.js, ops.css): it holds no data,
so it needs no token. The browser reads the token from the URL fragment (`#token=...`,
which never reaches a server or its logs) or a form, and polls `GET /ops/data` with
`Authorization: Bearer <OPS_TOKEN>`. Without OPS_TOKEN both answer 404, as if absent.

`/ops/data` runs every dashboard in one read-only REPEATABLE READ transaction (one
snapshot, so the tables agree with each other) with a statement timeout; each query has
its own savepoint, so one that fails or times out is reported with an "error" and the
others still answer.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from typing import Any

import psycopg
from flask import Blueprint, Response, abort, current_app, jsonify, request

from queue_jobs.dashboards import Dashboard, dashboards
from queue_jobs.domain_errors import DomainError
from webapp.context import db_pool, web_config

log = logging.getLogger(__name__)
bp = Blueprint("ops", __name__)

STATEMENT_TIMEOUT_MS = 5_000
# Once the queries have taken this long, the rest are skipped: the answer stays well
# inside gunicorn's 60 s timeout however many dashboards there are.
BUDGET_S = 20.0
MAX_ROWS = 500  # per dashboard: the page is for glancing, not exporting
# Only this origin's script and style; the form never submits (ops.js handles it, and a
# submitted form would put the token in a URL); no framing.
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
               "connect-src 'self'; base-uri 'none'; form-action 'none'; "
               "frame-ancestors 'none'")


class OpsTokenInvalid(DomainError):
    """Send the ops token as 'Authorization: Bearer <OPS_TOKEN>'."""

    status = 401
    error_code = "OPS_TOKEN_INVALID"

    def __init__(self) -> None:
        super().__init__()
        self.headers["WWW-Authenticate"] = 'Bearer realm="ops"'


@bp.before_request
def only_when_configured() -> None:
    if not web_config().ops_token:
        abort(404)


@bp.after_request
def private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/ops")
def page() -> Response:
    response = current_app.send_static_file("ops.html")
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


@bp.get("/ops/data")
def data() -> Response:
    _check_token()
    with db_pool().connection() as conn:
        results = run_dashboards(conn, dashboards())
    return jsonify({"generatedAt": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "dashboards": results})


def _check_token() -> None:
    expected = web_config().ops_token or ""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Bytes, not str: compare_digest refuses non-ASCII strings, and a header can hold any
    # Latin-1 character.
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             expected.encode()):
        raise OpsTokenInvalid()


def run_dashboards(conn: psycopg.Connection[Any],
                   boards: tuple[Dashboard, ...]) -> list[dict[str, Any]]:
    results = []
    deadline = time.monotonic() + BUDGET_S
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute("SELECT set_config('statement_timeout', %s, true)",  # SET LOCAL
                     (str(STATEMENT_TIMEOUT_MS),))
        conn.execute("SET LOCAL TimeZone = 'UTC'")  # every timestamp in one zone
        for board in boards:
            result: dict[str, Any] = {
                "name": board.name, "title": board.title, "chart": board.chart,
                "series": list(board.series), "description": board.description,
                "columns": [], "rows": []}
            if time.monotonic() > deadline:
                result["error"] = f"Skipped: the queries took over {BUDGET_S:g} s."
            else:
                result.update(_run_one(conn, board))
            results.append(result)
    return results


def _run_one(conn: psycopg.Connection[Any], board: Dashboard) -> dict[str, Any]:
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
    return {"columns": columns, "rows": shown, "truncated": len(rows) > MAX_ROWS}


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
