"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, Response

from queue_jobs.services import monitoring
from webapp.context import db_pool
from webapp.schemas.responses import Healthy, NotReady, Ready, dumped

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return dumped(Healthy, {"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    with db_pool().connection() as conn:
        schema = monitoring.schema_state(conn)
    if not schema.ready:
        body = {"status": "schema-outdated", "error": "The database schema is not current.",
                "errorCode": "SCHEMA_OUTDATED", "schemaVersion": schema.current,
                "expectedVersion": schema.expected}
        return dumped(NotReady, body, 503)
    return dumped(Ready, {"status": "ready", "schemaVersion": schema.current})
