"""The only module that runs SQL. One function per named query in sql/queries/.

Every function takes the caller's connection first: the caller owns the transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from queue_jobs.sql_files import named_queries

# Where and under which name procrastinate dispatches pipeline runs (see queue_jobs.tasks).
QUEUE = "jobs"
RUN_TASK = "run_job"
_DISPATCH = {"queue": QUEUE, "task": RUN_TASK}

Conn = psycopg.Connection[Any]


def _sql(name: str) -> bytes:
    return named_queries()[name].encode()


def _one(conn: Conn, name: str, **params: Any) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_sql(name), params)
        return cur.fetchone()


def _all(conn: Conn, name: str, **params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_sql(name), params)
        return cur.fetchall()


def _changed(conn: Conn, name: str, **params: Any) -> bool:
    return _one(conn, name, **params) is not None


@dataclass(frozen=True)
class Owner:
    """Who is asking: a user (JWT) or else an anonymous session."""

    user_id: uuid.UUID | None
    session_id: str | None

    def params(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "session_id": self.session_id}


@dataclass(frozen=True)
class JobRow:
    id: uuid.UUID
    type: str
    status: str
    progress: int
    current_step: str | None
    error: str | None
    error_code: str | None
    result: Any
    step_started_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ClaimedJob:
    id: uuid.UUID
    type: str
    input: dict[str, Any]
    step_outputs: dict[str, Any]
    progress: int
    attempt: int


@dataclass(frozen=True)
class RunState:
    status: str
    dispatch_id: int | None
    cancel_requested: bool
    run_started_at: datetime | None


# --- API side -----------------------------------------------------------------------------

def create_job(conn: Conn, job_id: uuid.UUID, job_type: str, owner: Owner,
               job_input: dict[str, Any]) -> None:
    conn.execute(_sql("create_job"), {
        "id": job_id, "type": job_type, "owner_user_id": owner.user_id,
        "owner_session_id": None if owner.user_id else owner.session_id,
        "input": Jsonb(job_input), **_DISPATCH,
    })


def get_owned_job(conn: Conn, job_id: uuid.UUID, owner: Owner) -> JobRow | None:
    with conn.cursor(row_factory=class_row(JobRow)) as cur:
        cur.execute(_sql("get_owned_job"), {"id": job_id, **owner.params()})
        return cur.fetchone()


def list_owned_jobs(conn: Conn, owner: Owner, status: str | None, limit: int) -> list[JobRow]:
    with conn.cursor(row_factory=class_row(JobRow)) as cur:
        cur.execute(_sql("list_owned_jobs"),
                    {"status": status, "limit": limit, **owner.params()})
        return cur.fetchall()


def retry_failed_job(conn: Conn, job_id: uuid.UUID, owner: Owner) -> bool:
    return _changed(conn, "retry_failed_job", id=job_id, **owner.params(), **_DISPATCH)


def cancel_queued_job(conn: Conn, job_id: uuid.UUID, owner: Owner) -> int | None:
    """The dispatch id of the job it cancelled, or None if no queued job matched."""
    row = _one(conn, "cancel_queued_job", id=job_id, **owner.params())
    return row["dispatch_id"] if row else None


def request_running_job_cancel(conn: Conn, job_id: uuid.UUID, owner: Owner) -> int | None:
    row = _one(conn, "request_running_job_cancel", id=job_id, **owner.params())
    return row["dispatch_id"] if row else None


def cancel_dispatch(conn: Conn, dispatch_id: int) -> None:
    conn.execute(_sql("cancel_dispatch"), {"dispatch_id": dispatch_id})


def recent_step_durations(conn: Conn, job_type: str, sample: int = 20) -> dict[str, int]:
    rows = _all(conn, "recent_step_durations", type=job_type, sample=sample)
    return {row["step"]: row["mean_ms"] for row in rows}


def get_image(conn: Conn, image_id: uuid.UUID) -> tuple[str, bytes] | None:
    row = _one(conn, "get_image", id=image_id)
    return (row["content_type"], row["data"]) if row else None


def applied_migrations(conn: Conn) -> list[int]:
    return [row["version"] for row in _all(conn, "applied_migrations")]


def ping(conn: Conn) -> bool:
    return _changed(conn, "ping")


# --- worker side (fenced by dispatch_id) ----------------------------------------------------

def claim_job(conn: Conn, job_id: uuid.UUID, dispatch_id: int) -> ClaimedJob | None:
    with conn.cursor(row_factory=class_row(ClaimedJob)) as cur:
        cur.execute(_sql("claim_job"), {"id": job_id, "dispatch_id": dispatch_id})
        return cur.fetchone()


def start_step(conn: Conn, job_id: uuid.UUID, dispatch_id: int, step: str,
               progress: int) -> bool:
    return _changed(conn, "start_step", id=job_id, dispatch_id=dispatch_id, step=step,
                    progress=progress)


def checkpoint_step(conn: Conn, job_id: uuid.UUID, dispatch_id: int, step: str,
                    output: Any, duration_ms: int, progress: int) -> bool:
    return _changed(conn, "checkpoint_step", id=job_id, dispatch_id=dispatch_id, step=step,
                    output=Jsonb(output), duration_ms=duration_ms, progress=progress)


def succeed_job(conn: Conn, job_id: uuid.UUID, dispatch_id: int, result: Any) -> bool:
    return _changed(conn, "succeed_job", id=job_id, dispatch_id=dispatch_id,
                    result=Jsonb(result))


def fail_job(conn: Conn, job_id: uuid.UUID, dispatch_id: int, error: str,
             error_code: str) -> bool:
    return _changed(conn, "fail_job", id=job_id, dispatch_id=dispatch_id, error=error,
                    error_code=error_code)


def redispatch_job(conn: Conn, job_id: uuid.UUID, dispatch_id: int, *, lost: bool) -> bool:
    return _changed(conn, "redispatch_job", id=job_id, dispatch_id=dispatch_id,
                    lost=int(lost), **_DISPATCH)


def get_run_state(conn: Conn, job_id: uuid.UUID) -> RunState | None:
    with conn.cursor(row_factory=class_row(RunState)) as cur:
        cur.execute(_sql("get_run_state"), {"id": job_id})
        return cur.fetchone()


def insert_image(conn: Conn, image_id: uuid.UUID, job_id: uuid.UUID, content_type: str,
                 data: bytes, prompt: str) -> None:
    conn.execute(_sql("insert_image"), {"id": image_id, "job_id": job_id,
                                        "content_type": content_type, "data": data,
                                        "prompt": prompt})


def insert_organization(conn: Conn, org_id: uuid.UUID, job_id: uuid.UUID, name: str,
                        website_url: str, analysis: dict[str, Any]) -> None:
    conn.execute(_sql("insert_organization"), {
        "id": org_id, "job_id": job_id, "name": name, "website_url": website_url,
        "analysis": Jsonb(analysis)})


# --- reaper -------------------------------------------------------------------------------

def lost_runs(conn: Conn, stalled_after_s: float) -> list[dict[str, Any]]:
    return _all(conn, "lost_runs", stalled_after_s=stalled_after_s)


def finish_lost_dispatch(conn: Conn, dispatch_id: int) -> None:
    conn.execute(_sql("finish_lost_dispatch"), {"dispatch_id": dispatch_id})


def overdue_runs(conn: Conn, timeout_s: float) -> list[dict[str, Any]]:
    return _all(conn, "overdue_runs", timeout_s=timeout_s)
