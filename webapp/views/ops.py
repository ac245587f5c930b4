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

import logging
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app

from queue_jobs.observability.dashboards import dashboards
from queue_jobs.services.monitoring import run_dashboards
from webapp.context import db_pool
from webapp.hooks.ops_token import check_ops_token, only_when_configured
from webapp.schemas.responses import OpsData, dumped

log = logging.getLogger(__name__)
bp = Blueprint("ops", __name__)

# Only this origin's script and style; the form never submits (ops.js handles it, and a
# submitted form would put the token in a URL); no framing.
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
               "connect-src 'self'; base-uri 'none'; form-action 'none'; "
               "frame-ancestors 'none'")


bp.before_request(only_when_configured)


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
    check_ops_token()
    with db_pool().connection() as conn:
        results = run_dashboards(conn, dashboards())
    return dumped(OpsData, {"generatedAt": datetime.now(UTC).isoformat(timespec="milliseconds"),
                            "dashboards": results})

