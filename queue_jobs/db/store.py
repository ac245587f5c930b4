"""The only module that runs SQL. One function per named query in sql/queries/.

Every function takes the caller's connection first: the caller owns the transaction.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from queue_jobs.db.connections import AsyncConn, Conn
from queue_jobs.db.sql_files import named_queries
from queue_jobs.models import (
    ClaimedJob,
    CreateLimits,
    CreateOutcome,
    FinishedJob,
    JobOutcome,
    JobRow,
    JobTypePause,
    Login,
    Organization,
    Owner,
    Post,
    QueuePace,
    RunState,
    StepTiming,
    UsageRows,
    User,
    WindowCount,
)

# Where and under which name procrastinate dispatches pipeline runs (see queue_jobs.worker.tasks).
QUEUE = "jobs"
RUN_TASK = "run_job"
_DISPATCH = {"queue": QUEUE, "task": RUN_TASK}
T = TypeVar("T")


def _sql(name: str) -> bytes:
    return named_queries()[name].encode()


def _one(conn: Conn, query: str, /, **params: Any) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_sql(query), params)
        return cur.fetchone()


def _all(conn: Conn, query: str, /, **params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_sql(query), params)
        return cur.fetchall()


def _typed_one(conn: Conn, row_type: type[T], query: str, /, **params: Any) -> T | None:
    with conn.cursor(row_factory=class_row(row_type)) as cur:
        cur.execute(_sql(query), params)
        return cur.fetchone()


def _typed_all(conn: Conn, row_type: type[T], query: str, /, **params: Any) -> list[T]:
    with conn.cursor(row_factory=class_row(row_type)) as cur:
        cur.execute(_sql(query), params)
        return cur.fetchall()


def _changed(conn: Conn, query: str, /, **params: Any) -> bool:
    return _one(conn, query, **params) is not None


def _returned(conn: Conn, column: str, query: str, /, **params: Any) -> Any:
    """`column` of the row the statement returned, or None if it returned none."""
    row = _one(conn, query, **params)
    return row[column] if row else None


def create_job(conn: Conn, job_id: uuid.UUID, job_type: str, owner: Owner,
               job_input: dict[str, Any], limits: CreateLimits, *,
               inline: bool = False) -> CreateOutcome:
    """One statement (jobs_create): outside a transaction it commits as it runs. inline:
    the job is created running, for the caller to run in this process."""
    outcome = _typed_one(
        conn, CreateOutcome, "create_job", id=job_id, type=job_type,
        owner_user_id=owner.user_id,
        owner_session_id=None if owner.user_id else owner.session_id,
        input=Jsonb(job_input), owner_lock=_owner_lock_key(owner),
        max_active=limits.max_active, address_key=limits.address_key,
        address_limit=limits.address_limit, address_window_s=limits.address_window_s,
        inline=inline, fair=limits.fair_dispatch, **_DISPATCH)
    assert outcome is not None  # a function call answers one row
    return outcome


def get_job_outcome(conn: Conn, job_id: uuid.UUID) -> JobOutcome | None:
    return _typed_one(conn, JobOutcome, "get_job_outcome", id=job_id)


def get_owned_job(conn: Conn, job_id: uuid.UUID, owner: Owner,
                  known_etags: Sequence[str] = (), any_etag: bool = False,
                  document_version: str = "") -> JobRow | None:
    """The job if `owner` may see it. A finished job whose finished_etag (its row version
    and `document_version`) the caller already knows (`known_etags`, or `any_etag`)
    comes without its result."""
    # One text parameter, not a text[]: psycopg builds arrays in Python, which was a sixth
    # of a 304's time in this call. Our tags contain no space (a tag that does is not ours).
    known = " ".join(tag for tag in known_etags if " " not in tag)
    return _typed_one(conn, JobRow, "get_owned_job", id=job_id, known=known, any=any_etag,
                      document_version=document_version, **owner.params())


def list_owned_jobs(conn: Conn, owner: Owner, status: str | None, limit: int) -> list[JobRow]:
    return _typed_all(conn, JobRow, "list_owned_jobs", status=status, limit=limit,
                      **owner.params())


def _acting_owner(owner: Owner | None) -> dict[str, Any]:
    """The owner checks of retry and cancel: `owner`'s jobs only, or (None: an operator,
    queue_jobs.services.jobs *_for_operator) any owner's."""
    if owner is None:
        return {"user_id": None, "session_id": None, "any_owner": True}
    return {**owner.params(), "any_owner": False}


def retry_failed_job(conn: Conn, job_id: uuid.UUID, owner: Owner | None, *,
                     fair: bool) -> int | None:
    """The job's new row version, or None if no failed job of the owner's (None: of
    anyone's) matched."""
    return _returned(conn, "version", "retry_failed_job", id=job_id, fair=fair,
                     **_acting_owner(owner), **_DISPATCH)


def cancel_queued_job(conn: Conn, job_id: uuid.UUID,
                      owner: Owner | None) -> tuple[int | None, FinishedJob, int] | None:
    """(dispatch id (None: a held job's), the job, its new row version) of the job it
    cancelled, or None if no queued job (of the owner's; None: of anyone's) matched."""
    row = _one(conn, "cancel_queued_job", id=job_id, **_acting_owner(owner))
    if row is None:
        return None
    return row["dispatch_id"], FinishedJob(row["type"], row["elapsed_ms"]), row["version"]


def request_running_job_cancel(conn: Conn, job_id: uuid.UUID,
                               owner: Owner | None) -> tuple[int, int] | None:
    """(dispatch id, new row version) of the running job told to stop, or None."""
    row = _one(conn, "request_running_job_cancel", id=job_id, **_acting_owner(owner))
    return (row["dispatch_id"], row["version"]) if row else None


def cancel_dispatch(conn: Conn, dispatch_id: int) -> None:
    conn.execute(_sql("cancel_dispatch"), {"dispatch_id": dispatch_id})


def recent_step_durations(conn: Conn, job_type: str,
                          sample: int = 20) -> dict[str, StepTiming]:
    rows = _all(conn, "recent_step_durations", type=job_type, sample=sample)
    return {row["step"]: StepTiming(row["mean_ms"], row["p90_ms"]) for row in rows}


# Past this many dispatches, numbering the whole line once beats two counts for each.
POSITIONS_RANKED_FROM = 32


def queue_positions(conn: Conn, dispatch_ids: Sequence[int]) -> dict[int, int]:
    """Each dispatch's place in our queue's line (1: the next to start)."""
    query = ("queue_positions_ranked" if len(dispatch_ids) >= POSITIONS_RANKED_FROM
             else "queue_positions")
    rows = _all(conn, query, dispatch_ids=list(dispatch_ids), queue=QUEUE)
    return {row["dispatch_id"]: row["position"] for row in rows}


def queue_pace(conn: Conn, *, window_s: float, stalled_after_s: float,
               sample: int = 50) -> QueuePace:
    row = _one(conn, "queue_pace", window_s=window_s, stalled_after_s=stalled_after_s,
               sample=sample, queue=QUEUE)
    assert row is not None  # a SELECT of scalar subqueries answers one row
    return QueuePace(window_s=window_s, **row)


def get_owned_image(conn: Conn, image_id: uuid.UUID, owner: Owner) -> tuple[str, bytes] | None:
    row = _one(conn, "get_owned_image", id=image_id, **owner.params())
    return (row["content_type"], row["data"]) if row else None


# --- accounts and rate limits ---------------------------------------------------------------

def create_user(conn: Conn, user_id: uuid.UUID, email: str, name: str | None,
                password_hash: str) -> User:
    """Raises psycopg.errors.UniqueViolation (constraint users_email_key) for a taken email."""
    user = _typed_one(conn, User, "create_user", id=user_id, email=email, name=name,
                      password_hash=password_hash)
    assert user is not None  # INSERT ... RETURNING always returns the row
    return user


def get_user(conn: Conn, user_id: uuid.UUID) -> User | None:
    return _typed_one(conn, User, "get_user", id=user_id)


def get_login(conn: Conn, email: str) -> Login | None:
    return _typed_one(conn, Login, "get_login", email=email)


def update_password_hash(conn: Conn, user_id: uuid.UUID, password_hash: str) -> None:
    conn.execute(_sql("update_password_hash"), {"id": user_id, "password_hash": password_hash})


def hit_rate_limit(conn: Conn, key: str, window_s: int, allowed: int) -> WindowCount:
    """A hit past `allowed` is not written (hits then answers allowed + 1)."""
    count = _typed_one(conn, WindowCount, "hit_rate_limit", key=key, window_s=window_s,
                       allowed=allowed)
    assert count is not None  # rate_limit_hit answers one row
    return count


def release_rate_limit(conn: Conn, key: str, window_started_at: datetime) -> None:
    conn.execute(_sql("release_rate_limit"), {"key": key,
                                               "window_started_at": window_started_at})


def clear_rate_limit(conn: Conn, key: str) -> None:
    conn.execute(_sql("clear_rate_limit"), {"key": key})


# --- organizations and posts ----------------------------------------------------------------

def claim_session_organizations(conn: Conn, user_id: uuid.UUID, session_id: str) -> int:
    return len(_all(conn, "claim_session_organizations", user_id=user_id,
                    session_id=session_id))


def get_visible_organization(conn: Conn, org_id: uuid.UUID, owner: Owner) -> Organization | None:
    return _typed_one(conn, Organization, "get_visible_organization", id=org_id,
                      **owner.params())


def list_user_organizations(conn: Conn, user_id: uuid.UUID) -> list[Organization]:
    return _typed_all(conn, Organization, "list_user_organizations", user_id=user_id)


def get_user_post(conn: Conn, post_id: uuid.UUID, user_id: uuid.UUID) -> Post | None:
    return _typed_one(conn, Post, "get_user_post", id=post_id, user_id=user_id)


# --- fair use -------------------------------------------------------------------------------

def lock_key(conn: Conn, key: str) -> None:
    """Held until the transaction ends (pg_advisory_xact_lock)."""
    conn.execute(_sql("lock_key"), {"key": key})


def lock_owner(conn: Conn, owner: Owner) -> None:
    lock_key(conn, _owner_lock_key(owner))


def _owner_lock_key(owner: Owner) -> str:
    return f"jobs-owner:{owner.key}"


def count_active_jobs(conn: Conn, owner: Owner) -> int:
    active = _returned(conn, "active", "count_active_jobs", **owner.params())
    return int(active)


def find_idempotency_key(conn: Conn, owner: Owner, key: str) -> tuple[uuid.UUID, bytes] | None:
    row = _one(conn, "find_idempotency_key", owner_key=owner.key, key=key)
    return (row["job_id"], bytes(row["request_hash"])) if row else None


def delete_expired_idempotency_keys(conn: Conn, batch: int) -> int:
    return conn.execute(_sql("delete_expired_idempotency_keys"), {"batch": batch}).rowcount


def delete_expired_rate_limits(conn: Conn, batch: int) -> int:
    return conn.execute(_sql("delete_expired_rate_limits"), {"batch": batch}).rowcount


def save_idempotency_key(conn: Conn, owner: Owner, key: str, request_hash: bytes,
                         job_id: uuid.UUID, window_s: int) -> None:
    conn.execute(_sql("save_idempotency_key"), {"owner_key": owner.key, "key": key,
                                                 "request_hash": request_hash,
                                                 "job_id": job_id, "window_s": window_s})


def active_job_counts(conn: Conn) -> list[dict[str, Any]]:
    return _all(conn, "active_job_counts")


def recent_step_stats(conn: Conn) -> list[dict[str, Any]]:
    return _all(conn, "recent_step_stats")


def scrape_capacity(conn: Conn, stalled_after_s: float) -> dict[str, Any]:
    row = _one(conn, "scrape_capacity", stalled_after_s=stalled_after_s)
    assert row is not None  # an aggregate: always one row
    return row


def applied_migrations(conn: Conn) -> list[int]:
    return [row["version"] for row in _all(conn, "applied_migrations")]


def begin_dashboard_snapshot(conn: Conn, timeout_ms: int) -> None:
    """Inside a fresh transaction: one read-only snapshot, a statement timeout, UTC."""
    conn.execute(_sql("begin_dashboard_snapshot"))
    _one(conn, "dashboard_settings", timeout_ms=str(timeout_ms))


def ping(conn: Conn) -> bool:
    return _changed(conn, "ping")


# --- paused job types ---------------------------------------------------------------------

def lock_job_type(conn: Conn, job_type: str) -> None:
    """The type's lock, exclusive until the transaction ends: every dispatch of the type
    takes it shared (sql/functions/jobs_dispatch_unless_paused.sql)."""
    lock_key(conn, f"job-type:{job_type}")


def insert_job_type_pause(conn: Conn, job_type: str, reason: str, paused_by: str) -> bool:
    """False if the type was paused already."""
    return _changed(conn, "insert_job_type_pause", type=job_type, reason=reason,
                    paused_by=paused_by)


def job_type_pause_exists(conn: Conn, job_type: str) -> bool:
    return _changed(conn, "job_type_pause_exists", type=job_type)


def delete_job_type_pause(conn: Conn, job_type: str) -> None:
    conn.execute(_sql("delete_job_type_pause"), {"type": job_type})


def hold_queued_dispatches(conn: Conn, job_type: str) -> int:
    """Takes back the type's dispatches no worker took yet; how many jobs it held back."""
    return len(_all(conn, "hold_queued_dispatches", type=job_type))


def dispatch_held_jobs(conn: Conn, job_type: str, batch: int, *, fair: bool) -> int:
    """The oldest `batch` held jobs of the type dispatched; how many."""
    return int(_returned(conn, "dispatched", "dispatch_held_jobs", type=job_type,
                         batch=batch, fair=fair, **_DISPATCH))


def paused_job_types(conn: Conn) -> list[JobTypePause]:
    return _typed_all(conn, JobTypePause, "paused_job_types")


# --- worker side (fenced by dispatch_id) ----------------------------------------------------

def claim_job(conn: Conn, job_id: uuid.UUID, dispatch_id: int,
              first_steps: Mapping[str, str]) -> ClaimedJob | None:
    """first_steps: job type -> its first step, shown as started by a fresh job's claim."""
    return _typed_one(conn, ClaimedJob, "claim_job", id=job_id, dispatch_id=dispatch_id,
                      first_steps=Jsonb(dict(first_steps)))


async def fetch_and_claim_job(conn: AsyncConn, queues: Iterable[str] | None, worker_id: int,
                              first_steps: Mapping[str, str]
                              ) -> tuple[dict[str, Any] | None, ClaimedJob | None]:
    """A worker's fetch, with the claim of a run's job (claim_job's) in the same statement:
    procrastinate's job row (procrastinate's fetch_job row; None: nothing to do) and, for a
    run of ours, the claim (None: another task, or the dispatch is no longer current)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_sql("fetch_and_claim_job"), {
            "queues": None if queues is None else list(queues), "worker_id": worker_id,
            "first_steps": Jsonb(dict(first_steps)), "task": RUN_TASK})
        row = await cur.fetchone()
    if row is None or row["id"] is None:
        return None, None
    claim = {field: row.pop(f"claimed_{field}") for field in _CLAIM_FIELDS}
    return row, None if claim["id"] is None else ClaimedJob(**claim)


_CLAIM_FIELDS = tuple(field.name for field in dataclasses.fields(ClaimedJob))


async def finish_dispatch(conn: AsyncConn, dispatch_id: int, status: str,
                          delete: bool) -> bool:
    """procrastinate's finish of a job (its finish_job), unless it ended already: whether
    this ended it."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_sql("finish_dispatch"), {"dispatch_id": dispatch_id,
                                                    "status": status, "delete": delete})
        row = await cur.fetchone()
    return bool(row and row["finished"])


def start_step(conn: Conn, job_id: uuid.UUID, dispatch_id: int, step: str,
               progress: int) -> bool:
    return _changed(conn, "start_step", id=job_id, dispatch_id=dispatch_id, step=step,
                    progress=progress)


def checkpoint_steps(conn: Conn, job_id: uuid.UUID, dispatch_id: int,
                     steps: Sequence[Mapping[str, Any]], progress: int, attempt: int = 1,
                     next_step: str | None = None) -> str | None:
    """steps: {step, output, duration_ms, usage} each. The job's type, or None if this run
    was fenced out. With next_step, that step starts in the same write."""
    saved = _save_steps(conn, job_id, dispatch_id, steps, attempt, progress=progress,
                        next_step=next_step, result=None)
    return saved.type if saved else None


def succeed_job(conn: Conn, job_id: uuid.UUID, dispatch_id: int, result: Any,
                steps: Sequence[Mapping[str, Any]] = (), attempt: int = 1, *,
                finish_dispatch: bool = False, delete_dispatch: bool = False
                ) -> FinishedJob | None:
    """The run's last write: its last steps (as checkpoint_steps) and the result. None if
    this run was fenced out. finish_dispatch: procrastinate's job ends in the same
    statement ('succeeded'; deleted with delete_dispatch), if the job succeeded here
    (FinishedJob.dispatch_finished)."""
    return _save_steps(conn, job_id, dispatch_id, steps, attempt, progress=100,
                       next_step=None, result=Jsonb(result), finish_dispatch=finish_dispatch,
                       delete_dispatch=delete_dispatch)


def _save_steps(conn: Conn, job_id: uuid.UUID, dispatch_id: int,
                steps: Sequence[Mapping[str, Any]], attempt: int, *, progress: int,
                next_step: str | None, result: Jsonb | None, finish_dispatch: bool = False,
                delete_dispatch: bool = False) -> FinishedJob | None:
    return _typed_one(conn, FinishedJob, "save_steps", id=job_id, dispatch_id=dispatch_id,
                      steps=Jsonb(list(steps)), progress=progress, attempt=attempt,
                      next_step=next_step, result=result, finish_dispatch=finish_dispatch,
                      delete_dispatch=delete_dispatch)


def record_unfinished_step(conn: Conn, job_id: uuid.UUID, step: str, outcome: str,
                           duration_ms: int, usage: UsageRows, attempt: int,
                           reasks: int = 0) -> str | None:
    """outcome: 'failed' | 'interrupted'. The job's type, or None if the job is gone."""
    return _returned(conn, "type", "record_failed_step", id=job_id, step=step,
                     outcome=outcome, duration_ms=duration_ms, attempt=attempt,
                     usage=Jsonb(list(usage)), reasks=reasks)


def record_llm_call(conn: Conn, job_id: uuid.UUID, step: str, model: str,
                    input_tokens: int, output_tokens: int) -> None:
    """One answered call, added to the job's totals and the day's rollup."""
    conn.execute(_sql("record_llm_call"), {
        "id": job_id, "step": step, "model": model, "input_tokens": input_tokens,
        "output_tokens": output_tokens})


def fail_job(conn: Conn, job_id: uuid.UUID, dispatch_id: int, error: str,
             error_code: str) -> FinishedJob | None:
    """None if this run was fenced out (or the job had already finished)."""
    return _typed_one(conn, FinishedJob, "fail_job", id=job_id, dispatch_id=dispatch_id,
                      error=error, error_code=error_code)


def redispatch_job(conn: Conn, job_id: uuid.UUID, dispatch_id: int | None, *, lost: bool,
                   fair: bool) -> bool:
    """dispatch_id: the one the caller saw (None: the job had none). The job is held
    instead (queued, no dispatch) if its type is paused."""
    return _changed(conn, "redispatch_job", id=job_id, dispatch_id=dispatch_id,
                    lost=int(lost), fair=fair, **_DISPATCH)


def get_run_state(conn: Conn, job_id: uuid.UUID) -> RunState | None:
    return _typed_one(conn, RunState, "get_run_state", id=job_id)


def insert_step_image(conn: Conn, image_id: uuid.UUID, job_id: uuid.UUID, dispatch_id: int,
                      step: str, part: str, url: str, content_type: str, data: bytes,
                      prompt: str, progress: int | None = None) -> bool:
    """The image and the step's part that names it (`url`), together, and the job's
    progress raised to `progress` (None: left); False if this run was fenced out
    (nothing is stored)."""
    return _changed(conn, "insert_step_image", id=image_id, job_id=job_id,
                    dispatch_id=dispatch_id, step=step, part=part, url=url,
                    content_type=content_type, data=data, prompt=prompt, progress=progress)


def insert_post(conn: Conn, post_id: uuid.UUID, organization_id: uuid.UUID,
                job_id: uuid.UUID, dispatch_id: int, post: dict[str, Any],
                status: str) -> Post | None:
    """The saved post (saved once; a repeated run finds it); None if the run lost the job."""
    fenced = _changed(conn, "insert_post", id=post_id, organization_id=organization_id,
                      job_id=job_id, dispatch_id=dispatch_id, title=post["title"],
                      content=post["content"], excerpt=post["excerpt"],
                      tags=Jsonb(post["tags"]), seo=Jsonb(post["seo"]),
                      visuals=Jsonb(post["visuals"]), status=status)
    return _typed_one(conn, Post, "get_post", id=post_id) if fenced else None


def insert_organization(conn: Conn, org_id: uuid.UUID, job_id: uuid.UUID, dispatch_id: int,
                        name: str, website_url: str, analysis: dict[str, Any]) -> bool:
    return _changed(conn, "insert_organization", id=org_id, job_id=job_id,
                    dispatch_id=dispatch_id, name=name, website_url=website_url,
                    analysis=Jsonb(analysis))


# --- reaper -------------------------------------------------------------------------------

def lost_runs(conn: Conn, stalled_after_s: float,
              up_for_s: float | None = None) -> list[dict[str, Any]]:
    """up_for_s: how long ago the caller's worker reconnected after an outage (None: it
    never lost the database)."""
    return _all(conn, "lost_runs", stalled_after_s=stalled_after_s, up_for_s=up_for_s)


def prune_lost_workers(conn: Conn, stalled_after_s: float, up_for_s: float | None) -> int:
    return conn.execute(_sql("prune_lost_workers"), {"stalled_after_s": stalled_after_s,
                                                      "up_for_s": up_for_s}).rowcount


def finish_lost_dispatch(conn: Conn, dispatch_id: int) -> None:
    conn.execute(_sql("finish_lost_dispatch"), {"dispatch_id": dispatch_id})


def delete_old_finished_jobs(conn: Conn, retention_days: int, batch: int) -> int:
    return conn.execute(_sql("delete_old_finished_jobs"),
                        {"retention_days": retention_days, "batch": batch}).rowcount


def worker_heartbeat_age(conn: Conn, worker_id: int) -> float | None:
    """Seconds since the procrastinate worker's last heartbeat (the database's clock), or
    None if it is not registered."""
    return _returned(conn, "age_s", "worker_heartbeat_age", worker_id=worker_id)


def delete_finished_dispatches(conn: Conn, keep_hours: int, batch: int) -> int:
    return conn.execute(_sql("delete_finished_dispatches"),
                        {"keep_hours": keep_hours, "batch": batch}).rowcount


def dead_inline_runs(conn: Conn, stalled_after_s: float) -> list[dict[str, Any]]:
    return _all(conn, "dead_inline_runs", stalled_after_s=stalled_after_s)


def beat_inline_run(conn: Conn, job_id: uuid.UUID, dispatch_id: int) -> None:
    conn.execute(_sql("beat_inline_run"), {"id": job_id, "dispatch_id": dispatch_id})


def overdue_runs(conn: Conn, timeout_s: float) -> list[dict[str, Any]]:
    return _all(conn, "overdue_runs", timeout_s=timeout_s)


def jobs_by_ids(conn: Conn, job_ids: Sequence[uuid.UUID]) -> list[JobRow]:
    return _typed_all(conn, JobRow, "jobs_by_ids", ids=list(job_ids))


# --- the operator's console (sql/queries/ops.sql) -------------------------------------------

def _unprepared(conn: Conn, query: str, /, **params: Any) -> list[dict[str, Any]]:
    """Never a prepared statement: psycopg prepares a query it runs often, and PostgreSQL
    may then settle on a generic plan, in which an absent filter's `x IS NULL OR ...`
    cannot fold away and no index serves (sql/functions/ops_jobs_matching.sql)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_sql(query), params, prepare=False)
        return cur.fetchall()


def ops_search_jobs(conn: Conn, matching: Mapping[str, Any], after: tuple[datetime, uuid.UUID]
                    | None, limit: int) -> list[dict[str, Any]]:
    """matching: ops_jobs_matching's arguments by name, without their leading _."""
    after_created, after_id = after or (None, None)
    return _unprepared(conn, "ops_search_jobs", **matching, after_created=after_created,
                       after_id=after_id, limit=limit)


def ops_count_jobs(conn: Conn, matching: Mapping[str, Any]) -> dict[str, int]:
    return {row["status"]: row["jobs"] for row in _unprepared(conn, "ops_count_jobs",
                                                               **matching)}


def ops_get_job(conn: Conn, job_id: uuid.UUID) -> dict[str, Any] | None:
    return _one(conn, "ops_get_job", id=job_id)


def ops_job_steps(conn: Conn, job_id: uuid.UUID) -> list[dict[str, Any]]:
    return _all(conn, "ops_job_steps", id=job_id)


def ops_job_images(conn: Conn, job_id: uuid.UUID) -> list[dict[str, Any]]:
    return _all(conn, "ops_job_images", id=job_id)


def ops_job_dispatches(conn: Conn, job_id: uuid.UUID) -> list[dict[str, Any]]:
    return _all(conn, "ops_job_dispatches", id=job_id)


def ops_job_audit(conn: Conn, job_id: uuid.UUID) -> list[dict[str, Any]]:
    return _all(conn, "ops_job_audit", id=job_id)


def ops_insert_audit(conn: Conn, actor: str, action: str, *, job_ids: Sequence[uuid.UUID],
                     job_count: int, filter_: Mapping[str, Any] | None = None,
                     detail: Mapping[str, Any] | None = None) -> dict[str, Any]:
    row = _one(conn, "ops_insert_audit", actor=actor, action=action,
               filter=None if filter_ is None else Jsonb(dict(filter_)),
               job_ids=list(job_ids), job_count=job_count, detail=Jsonb(dict(detail or {})))
    assert row is not None  # INSERT ... RETURNING
    return row


def ops_list_audit(conn: Conn, before_id: int | None, limit: int) -> list[dict[str, Any]]:
    return _unprepared(conn, "ops_list_audit", before_id=before_id, limit=limit)
