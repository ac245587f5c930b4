"""Rows the benchmarks write straight into our database: what a finished job looks like
without running one."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg

RESULT_BYTES = 10 * 1024  # a status document's result, as large as a real analysis's


def insert_succeeded_job(db: psycopg.Connection[Any], session: str) -> uuid.UUID:
    """A succeeded website-analysis job of an anonymous `session` with a 10 KB result,
    as the worker would leave it."""
    job_id = uuid.uuid4()
    result = {"success": True, "notes": "x" * RESULT_BYTES}
    db.execute("INSERT INTO jobs (id, type, owner_session_id, input, status, progress, result, "
               "finished_at) VALUES (%s, 'website-analysis', %s, '{}', 'succeeded', 100, %s, "
               "now())", (job_id, session, json.dumps(result)))
    return job_id
