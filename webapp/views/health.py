"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, Response

from queue_jobs.services import connections, monitoring
from queue_jobs.services.errors import QueueUnavailable
from webapp.context import db_pool
from webapp.schemas.responses import Healthy, NotReady, Ready, dumped

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return dumped(Healthy, {"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    reason = connections.unreachable_reason(db_pool())
    if reason is not None:
        raise QueueUnavailable(f"PostgreSQL is unreachable: {reason}.")
    with db_pool().connection() as conn:
        schema = monitoring.schema_state(conn)
    if not schema.ready:
        body = {"status": "schema-outdated", "error": "The database schema is not current.",
                "errorCode": "SCHEMA_OUTDATED", "schemaVersion": schema.current,
                "expectedVersion": schema.expected}
        return dumped(NotReady, body, 503)
    return dumped(Ready, {"status": "ready", "schemaVersion": schema.current})
