"""Job lifecycle rules for the API: create, status document, list, retry, cancel.

Every state change is one guarded UPDATE; when it matches no row, a single lookup decides
between 404 (not visible to this owner) and 409 (visible, wrong state).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from queue_jobs.db import store
from queue_jobs.db.store import Conn
from queue_jobs.models import JobRow, Owner, QueuePace, StepTiming, iso_utc
from queue_jobs.observability import job_metrics, logs
from queue_jobs.pipeline.registry import PIPELINES
from queue_jobs.services import accounts, fair_use, ids
from queue_jobs.services.errors import JobNotCancellable, JobNotFound, JobNotRetryable, parse_id
from queue_jobs.services.eta import (
    EMPTY_HISTORY_TTL_S,
    PACE_TTL_S,
    PACE_WINDOW_S,
    TtlCache,
    pipeline_seconds,
    queue_wait_s,
    remaining_seconds,
)
from queue_jobs.services.fair_use import FairUse
from queue_jobs.services.pauses import paused_message

log = logging.getLogger(__name__)

_step_timings: TtlCache[dict[str, StepTiming]] = TtlCache(empty_ttl_s=EMPTY_HISTORY_TTL_S)
_queue_pace: TtlCache[QueuePace] = TtlCache(PACE_TTL_S)
# A worker whose heartbeat (every 10 s) is older than this is not counted as a live one
# by the wait estimate (the ops page's workers table draws the same line).
LIVE_WORKER_S = 30.0


def parse_job_id(text: str) -> uuid.UUID:
    return parse_id(text, JobNotFound)


@dataclass(frozen=True)
class NewJob:
    job_type: str
    owner: Owner
    job_input: dict[str, Any]
    request_body: dict[str, Any]  # as the client sent it (validated): the idempotency check
    client_address: str
    idempotency_key: str | None = None


@dataclass(frozen=True)
class CreatedJob:
    job_id: uuid.UUID
    replayed: bool  # an earlier request with the same Idempotency-Key created it
    inline_dispatch_id: int | None = None  # set when the caller runs the job itself


def create_job(conn: Conn, new: NewJob, policy: FairUse, *, inline: bool = False) -> CreatedJob:
    """Checks fair use and creates the job: dispatched to the workers, or (inline=True)
    already running under a local dispatch id, for the caller to run in-process.
    Without an Idempotency-Key this is one statement: the caller need not open a
    transaction for it. With one, it must (the key is looked up under the owner's lock)."""
    owner, key = new.owner, new.idempotency_key
    fingerprint = b"" if key is None else fair_use.request_hash(new.job_type, new.request_body)
    if key is not None:
        store.lock_owner(conn, owner)
        earlier = fair_use.replayed_job(conn, owner, key, fingerprint)
        if earlier is not None:
            return CreatedJob(earlier, replayed=True)
    job_id = ids.uuid7()  # time-ordered: inserts stay at the primary key's right edge
    outcome = store.create_job(conn, job_id, new.job_type, owner, new.job_input,
                               fair_use.create_limits(policy, owner, new.client_address),
                               inline=inline)
    refused = fair_use.refusal(outcome, owner, policy, lambda: _soonest_end(conn, owner))
    if refused is not None:
        raise refused
    if key is not None:
        store.save_idempotency_key(conn, owner, key, fingerprint, job_id,
                                   policy.idempotency_window_s)
    job_metrics.created(new.job_type)
    logs.event(log, "job.created", jobId=job_id, type=new.job_type, ownerKind=owner.kind,
               inline=inline)
    return CreatedJob(job_id, replayed=False,
                      inline_dispatch_id=outcome.dispatch_id if inline else None)


def _soonest_end(conn: Conn, owner: Owner) -> int | None:
    """Seconds until the first of the owner's running jobs should finish (Retry-After)."""
    now = datetime.now(UTC)
    estimates = [_eta(conn, row, now, None)
                 for row in store.list_owned_jobs(conn, owner, "running", 100)]
    return min((eta for eta in estimates if eta is not None), default=None)


def status_document(row: JobRow, eta_seconds: int | None, queue_position: int | None, *,
                    with_result: bool = True) -> dict[str, Any]:
    """The document of `row`, a pure function of the row, its estimate and its place in
    the queue (queue_positions; shown while queued only). A job held by a pause of its
    type shows why (pausedReason) and neither a place nor an estimate."""
    held = row.status == "queued" and row.pause_reason is not None
    document: dict[str, Any] = {
        "jobId": str(row.id),
        "type": row.type,
        "status": row.status,
        "progress": row.progress,
        "currentStep": _current_step_label(row),
        "estimatedTimeRemaining": None if held else eta_seconds,
        "queuePosition": queue_position if row.status == "queued" and not held else None,
        "pausedReason": (paused_message(row.type, row.pause_reason)
                         if held and row.pause_reason is not None else None),
        "error": row.error if row.status == "failed" else None,
        "errorCode": row.error_code if row.status == "failed" else None,
        "createdAt": iso_utc(row.created_at),
        "updatedAt": iso_utc(row.updated_at),
    }
    if with_result:
        document["result"] = row.result if row.status == "succeeded" else None
    return document


def _current_step_label(row: JobRow) -> str | None:
    if row.status == "queued":
        return None  # even for a retried job that remembers where it stopped
    if row.status == "running" and row.current_step is None:
        # Claimed, its first step about to start (a retried or re-dispatched run keeps the
        # step it resumes at): running always shows a step.
        return PIPELINES[row.type].steps[0].label
    return PIPELINES[row.type].label(row.current_step)


def _eta(conn: Conn, row: JobRow, now: datetime, position: int | None) -> int | None:
    if row.status not in ("queued", "running") or row.pause_reason is not None:
        return None
    timings = _step_timings.get(row.type, lambda: store.recent_step_durations(conn, row.type))
    pace = None
    if row.status == "queued" and position is not None:
        pace = _queue_pace.get("pace", lambda: store.queue_pace(
            conn, window_s=PACE_WINDOW_S, stalled_after_s=LIVE_WORKER_S))
    return _estimate(row, now, position, timings, pace)


def estimate_in_memory(row: JobRow, position: int | None, now: datetime) -> int | Cold | None:
    """As _eta, from this process's caches alone: COLD if one would need the database."""
    if row.status not in ("queued", "running") or row.pause_reason is not None:
        return None
    timings = _step_timings.peek(row.type)
    pace = _queue_pace.peek("pace")
    if timings is None or (row.status == "queued" and position is not None and pace is None):
        return COLD
    return _estimate(row, now, position, timings, pace)


def _estimate(row: JobRow, now: datetime, position: int | None,
              timings: dict[str, StepTiming], pace: QueuePace | None) -> int | None:
    pipeline = PIPELINES[row.type]
    wait_s = 0.0
    if row.status == "queued" and position is not None and pace is not None:
        wait_s = queue_wait_s(position, pace, pipeline_seconds(pipeline, timings))
    return remaining_seconds(pipeline, row.status, row.current_step, row.step_started_at,
                             now, timings, progress=row.progress, wait_s=wait_s)


class Cold:
    """A cache this process would have to fill from the database first."""


COLD = Cold()


def _queue_positions(conn: Conn, rows: Sequence[JobRow]) -> dict[int, int]:
    """The queued rows' places in the queue, in one statement (none if none is queued)."""
    dispatch_ids = [row.dispatch_id for row in rows
                    if row.status == "queued" and row.dispatch_id is not None]
    return store.queue_positions(conn, dispatch_ids) if dispatch_ids else {}


def _position_of(row: JobRow, positions: dict[int, int]) -> int | None:
    return positions.get(row.dispatch_id) if row.dispatch_id is not None else None


def _documents(conn: Conn, rows: Sequence[JobRow], *,
               with_result: bool) -> list[tuple[int | None, dict[str, Any]]]:
    """(queue position, status document) of each row: one statement for the positions of
    all the queued ones."""
    now = datetime.now(UTC)
    positions = _queue_positions(conn, rows)
    documents = []
    for row in rows:
        position = _position_of(row, positions)
        documents.append((position, status_document(row, _eta(conn, row, now, position),
                                                    position, with_result=with_result)))
    return documents


# Part of a finished job's ETag, with its row version: the document's shape and the step
# labels it shows (a deploy that changes them must not leave clients a stale 304).
DOCUMENT_VERSION = "1." + hashlib.blake2b(json.dumps(
    {job_type: [step.label for step in pipeline.steps] for job_type, pipeline
     in sorted(PIPELINES.items())}).encode(), digest_size=4).hexdigest()


def finished_etag(job_id: uuid.UUID, version: int) -> str:
    """A finished job's ETag, as get_owned_job computes it in SQL (a test keeps them equal)."""
    return f"f{DOCUMENT_VERSION}-" + hashlib.md5(f"{job_id}:{version}".encode(),
                                                 usedforsecurity=False).hexdigest()


def body_digest(body: bytes) -> str:
    """An active job's ETag: its document's digest (the ETA in it changes while the row
    does not)."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def _body(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


@dataclass(frozen=True)
class StatusAnswer:
    body: bytes | None  # the document; None: the caller's copy is current (answer 304)
    etag: str
    row: JobRow | None = None  # as read, when it was (live status remembers it)
    position: int | None = None


def job_status(conn: Conn, job_id: uuid.UUID, owner: Owner,
               known_etags: Sequence[str] = (), any_etag: bool = False) -> StatusAnswer:
    """The status document, unless the caller already has this finished job's version
    (then not even its result is read). A user's account is checked in the same statement
    (401 if it is gone), so the caller need not."""
    row = store.get_owned_job(conn, job_id, owner, known_etags, any_etag, DOCUMENT_VERSION)
    if row is None:
        _raise_not_found(conn, owner)
    if row.finished_etag is not None and (any_etag or row.finished_etag in known_etags):
        return StatusAnswer(None, row.finished_etag, row)
    (position, body), = render_statuses(conn, [row]).values()
    return StatusAnswer(body, row.finished_etag or body_digest(body), row, position)


def render_statuses(conn: Conn,
                    rows: Sequence[JobRow]) -> dict[uuid.UUID, tuple[int | None, bytes]]:
    """Job id -> (queue position, the status document's bytes), for jobs as read."""
    return {row.id: (position, _body(document)) for row, (position, document)
            in zip(rows, _documents(conn, rows, with_result=True), strict=True)}


def status_answer_in_memory(row: JobRow, position: int | None,
                            now: datetime) -> StatusAnswer | None:
    """An active job's answer from a row read earlier and still current; None if an
    estimate would need the database (a cache to fill)."""
    eta = estimate_in_memory(row, position, now)
    return None if isinstance(eta, Cold) else status_answer(row, position, eta)


def status_answer(row: JobRow, position: int | None, eta: int | None) -> StatusAnswer:
    """An active job's answer from a row read earlier and still current, with its
    estimate (estimate_in_memory)."""
    body = _body(status_document(row, eta, position))
    return StatusAnswer(body, body_digest(body), row, position)


def list_jobs(conn: Conn, owner: Owner, status: str | None, limit: int) -> list[dict[str, Any]]:
    """The owner's jobs, newest first. Like job_status, it checks a user's account in its
    own statement, so the caller need not."""
    rows = store.list_owned_jobs(conn, owner, status, limit)
    if not rows and owner.user_id is not None:
        accounts.existing_user(conn, owner.user_id)
    return [document for _position, document in _documents(conn, rows, with_result=False)]


def retry_job(conn: Conn, job_id: uuid.UUID, owner: Owner, policy: FairUse) -> int:
    """Queues the failed job again; its new row version (for live status)."""
    row = store.get_owned_job(conn, job_id, owner)
    if row is not None:
        store.lock_owner(conn, row.owner)
    version = store.retry_failed_job(conn, job_id, owner, fair=policy.fair_dispatch)
    if version is None:
        _raise_missing_or(conn, job_id, owner, JobNotRetryable())
    assert row is not None  # the guarded UPDATE found it visible
    # Active again, it counts against its owner's limit like a new job (its owner's: a
    # session's job retried with a JWT is still the session's). Over the limit, the raise
    # rolls the retry back.
    job_owner = row.owner
    fair_use.check_active_jobs(conn, job_owner, policy, lambda: _soonest_end(conn, job_owner))
    logs.event(log, "job.retried", jobId=job_id, type=row.type, ownerKind=owner.kind)
    return version


def retry_for_operator(conn: Conn, job_id: uuid.UUID, *, fair: bool) -> int:
    """An operator's retry (queue_jobs.services.ops_actions): any owner's failed job, by
    the owner's rules otherwise (the same statement: a failed job only, not a deprecated
    per-step call's). Not held to the owner's active-job limit: a support person retrying
    a user's job after an outage must not be refused by that user's quota, and the job
    was the owner's own request. Its dispatch still takes its owner's fair turn.
    Raises JobNotFound or JobNotRetryable; its new row version."""
    rows = store.jobs_by_ids(conn, [job_id])
    if not rows:
        raise JobNotFound()
    store.lock_owner(conn, rows[0].owner)  # as retry_job: the dispatch's turn is taken
    version = store.retry_failed_job(conn, job_id, None, fair=fair)
    if version is None:
        raise JobNotRetryable()
    logs.event(log, "job.retried", jobId=job_id, type=rows[0].type,
               ownerKind=rows[0].owner.kind, byOperator=True)
    return int(version)


def cancel_job(conn: Conn, job_id: uuid.UUID, owner: Owner) -> int:
    """Cancels the queued job, or tells its run to stop; its new row version."""
    return _cancel(conn, job_id, owner,
                   lambda: _raise_missing_or(conn, job_id, owner, JobNotCancellable()))


def cancel_for_operator(conn: Conn, job_id: uuid.UUID) -> int:
    """An operator's cancel: any owner's queued or running job, with the owner's effects.
    Raises JobNotFound or JobNotCancellable; its new row version."""
    def missing() -> NoReturn:
        if not store.jobs_by_ids(conn, [job_id]):
            raise JobNotFound()
        raise JobNotCancellable()

    return _cancel(conn, job_id, None, missing)


def _cancel(conn: Conn, job_id: uuid.UUID, owner: Owner | None,
            missing: Callable[[], NoReturn]) -> int:
    """owner None: an operator's, whatever the job's owner."""
    asked_by: dict[str, Any] = ({"ownerKind": owner.kind} if owner is not None
                                else {"byOperator": True})
    queued = store.cancel_queued_job(conn, job_id, owner)
    if queued is not None:
        dispatch_id, cancelled, version = queued
        job_metrics.job_finished(job_id, cancelled, "CANCELLED", **asked_by)
    else:
        running = store.request_running_job_cancel(conn, job_id, owner)
        if running is None:
            missing()
        dispatch_id, version = running
        logs.event(log, "job.cancel_requested", jobId=job_id, **asked_by)
    # queued: its dispatch becomes 'cancelled' (a held job has none); running: the
    # worker is told to abort
    if dispatch_id is not None:
        store.cancel_dispatch(conn, dispatch_id)
    return version


def _raise_missing_or(conn: Conn, job_id: uuid.UUID, owner: Owner,
                      conflict: Exception) -> NoReturn:
    if store.get_owned_job(conn, job_id, owner) is None:
        _raise_not_found(conn, owner)
    raise conflict


def _raise_not_found(conn: Conn, owner: Owner) -> NoReturn:
    """404, unless the job was not found because the token's account is gone: 401."""
    if owner.user_id is not None:
        accounts.existing_user(conn, owner.user_id)
    raise JobNotFound()
