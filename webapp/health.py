"""Liveness and readiness."""

from __future__ import annotations

import psycopg
from flask import Blueprint, Response, jsonify

from queue_jobs import store
from queue_jobs.migrate import latest_version
from webapp.context import db_pool

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    try:
        with db_pool().connection() as conn:
            applied = store.applied_migrations(conn)
    except psycopg.errors.UndefinedTable:  # never migrated
        applied = []
    expected = latest_version()
    current = max(applied, default=0)
    if current != expected:
        body = {"status": "schema-outdated", "error": "The database schema is not current.",
                "errorCode": "SCHEMA_OUTDATED", "schemaVersion": current,
                "expectedVersion": expected}
        return jsonify(body), 503
    return jsonify({"status": "ready", "schemaVersion": current}), 200
