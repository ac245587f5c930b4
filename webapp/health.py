"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from queue_jobs.services import monitoring
from webapp.context import db_pool

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    with db_pool().connection() as conn:
        schema = monitoring.schema_state(conn)
    if not schema.ready:
        body = {"status": "schema-outdated", "error": "The database schema is not current.",
                "errorCode": "SCHEMA_OUTDATED", "schemaVersion": schema.current,
                "expectedVersion": schema.expected}
        return jsonify(body), 503
    return jsonify({"status": "ready", "schemaVersion": schema.current}), 200
