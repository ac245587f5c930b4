"""Operators' actions on any owner's jobs, each written to the audit trail (ops_audit) in
the transaction of its effect: retry or cancel one job, bulk retry or cancel by filter
(a dry run's count first, then the confirmed run in batches), prune finished jobs now;
and the audit trail itself. The ops API (webapp/views/ops_api.py) and jobs-admin
(queue_jobs/admin) both call these.

Who: the actor is whatever the caller declares (X-Ops-Actor, "cli:<login>"): OPS_TOKEN is
one shared secret, so the trail says what was done and in whose name, not who proved it.
Pausing and resuming a job type (queue_jobs/services/pauses.py) are actions here too.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg_pool import ConnectionPool

from queue_jobs.db import store
from queue_jobs.db.store import Conn
from queue_jobs.models import JobStatus, JobType
from queue_jobs.services import connections, jobs, ops_jobs, pauses, retention
from queue_jobs.services.errors import (
    DomainError,
    JobNotCancellable,
    JobNotFound,
    JobNotRetryable,
    ValidationFailed,
)
from queue_jobs.services.ops_jobs import JobFilter

# A short name, as a log or the page shows it: letters, digits and . _ @ : + -.
ACTOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,63}$")
DEFAULT_ACTOR = "ops-token"
# Jobs per batch of a bulk action: one transaction each, short enough never to hold many
# rows or owners' locks for long.
BULK_BATCH = 200
MAX_PRUNE_DAYS = 36_500


class NoMatchingJobs(DomainError):
    """No job matches this filter in a state the action applies to."""

    status = 404
    error_code = "NO_MATCHING_JOBS"


class MoreJobsMatch(DomainError):
    """More jobs match now than you confirmed: run the dry run again and confirm its count."""

    status = 409
    error_code = "MORE_JOBS_MATCH"


def check_actor(name: str | None) -> str:
    """The declared actor, or DEFAULT_ACTOR if none is; ValidationFailed for a name that is
    not short and plain (an empty one too: a header sent empty is a mistake)."""
    if name is None:
        return DEFAULT_ACTOR
    if not ACTOR.match(name):
        raise ValidationFailed("X-Ops-Actor must be 1 to 64 characters of A-Z, a-z, 0-9 "
                               "and . _ @ : + - (starting with a letter or digit).")
    return name


# --- one job ----------------------------------------------------------------------------------

def retry_one(conn: Conn, actor: str, job_id: uuid.UUID, *, fair: bool) -> int:
    """Queues any owner's failed job again (jobs.retry_for_operator: not held to its
    owner's active-job limit); its new row version. The caller commits."""
    version = jobs.retry_for_operator(conn, job_id, fair=fair)
    store.ops_insert_audit(conn, actor, "retry", job_ids=[job_id], job_count=1)
    return version


def cancel_one(conn: Conn, actor: str, job_id: uuid.UUID) -> int:
    """Cancels any owner's queued job, or tells its running one to stop; its new row
    version. The caller commits."""
    version = jobs.cancel_for_operator(conn, job_id)
    store.ops_insert_audit(conn, actor, "cancel", job_ids=[job_id], job_count=1)
    return version


# --- bulk -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BulkAction:
    name: str  # the audit's action
    statuses: tuple[str, ...]  # the states it applies to
    act: Callable[[Conn, uuid.UUID, bool], Any]  # (conn, job id, fair dispatch)


BULK_ACTIONS = {
    "retry": BulkAction("bulk-retry", (JobStatus.FAILED,),
                        lambda conn, job_id, fair: jobs.retry_for_operator(conn, job_id,
                                                                           fair=fair)),
    "cancel": BulkAction("bulk-cancel", (JobStatus.QUEUED, JobStatus.RUNNING),
                         lambda conn, job_id, _fair: jobs.cancel_for_operator(conn, job_id)),
}
# A job that changed state since it matched: counted as skipped, not an error.
_SKIPPED = (JobNotRetryable, JobNotCancellable, JobNotFound)


def _statuses(action: BulkAction, job_filter: JobFilter) -> tuple[str, ...]:
    """The states the run walks: the action's, narrowed by the filter's own status."""
    return tuple(status for status in action.statuses
                 if job_filter.status in (None, status))


def matching(conn: Conn, action_name: str, job_filter: JobFilter) -> dict[str, Any]:
    """The dry run: how many jobs the action would take, by status. NoMatchingJobs if
    none."""
    action = BULK_ACTIONS[action_name]
    by_status = ops_jobs.counts(conn, job_filter)
    taken = {status: by_status[status] for status in _statuses(action, job_filter)}
    total = sum(taken.values())
    if total == 0:
        raise NoMatchingJobs()
    return {"action": action_name, "filter": job_filter.as_json(), "matching": total,
            "byStatus": taken}


def run_bulk(pool: ConnectionPool, actor: str, action_name: str, job_filter: JobFilter,
             confirmed: int, *, fair: bool, batch: int = BULK_BATCH) -> dict[str, Any]:
    """The confirmed run: refused (MoreJobsMatch) if more jobs match now than `confirmed`,
    else it takes at most `confirmed` jobs, newest first, in batches of `batch`, each its
    own transaction with its audit row. A job that left the action's states meanwhile is
    skipped. {"acted", "skipped", "matching", "batches"}."""
    action = BULK_ACTIONS[action_name]
    with pool.connection() as conn:
        plan = matching(conn, action_name, job_filter)
    if plan["matching"] > confirmed:
        raise MoreJobsMatch(f"{plan['matching']} jobs match now, more than the {confirmed} "
                            "you confirmed: run the dry run again and confirm its count.")
    bulk_id = uuid.uuid4()
    acted = skipped = batches = 0
    left = confirmed
    for status in _statuses(action, job_filter):
        walked = job_filter.with_status(status)
        after = None
        while left > 0:
            # Each batch read just before it is acted on, after the previous one's last
            # (created_at, id): a running job told to stop (still running) is not taken
            # twice, and jobs created meanwhile (newer) are not taken at all.
            with pool.connection() as conn:
                rows = ops_jobs.page_rows(conn, walked, after, min(batch, left))
            if not rows:
                break
            with pool.connection() as conn:  # one transaction: the batch and its audit row
                done = _act(conn, action, rows, fair)
                batches += 1
                store.ops_insert_audit(
                    conn, actor, action.name, job_ids=done, job_count=len(done),
                    filter_=job_filter.as_json(),
                    detail={"bulkId": str(bulk_id), "batch": batches, "confirmed": confirmed,
                            "skipped": len(rows) - len(done)})
            acted += len(done)
            skipped += len(rows) - len(done)
            left -= len(rows)
            after = (rows[-1]["created_at"], rows[-1]["id"])
    return {"action": action_name, "filter": job_filter.as_json(), "matching": plan["matching"],
            "acted": acted, "skipped": skipped, "batches": batches, "bulkId": str(bulk_id)}


def _act(conn: Conn, action: BulkAction, rows: list[dict[str, Any]],
         fair: bool) -> list[uuid.UUID]:
    """The action on each row's job; the ids it acted on (the others changed state since
    they matched: skipped)."""
    done = []
    # Owners' locks (retry) in one order: two bulk runs at once never deadlock.
    for row in sorted(rows, key=lambda r: (str(r["owner_user_id"]), str(r["owner_session_id"]))):
        try:
            action.act(conn, row["id"], fair)
        except _SKIPPED:
            continue
        done.append(row["id"])
    return done


# --- prune ------------------------------------------------------------------------------------

def prune(pool: ConnectionPool, actor: str, older_than_days: int) -> dict[str, Any]:
    """Deletes finished jobs older than `older_than_days` now, as housekeeping does hourly
    (retention.delete_finished_jobs: batches, each its own transaction), one audit row per
    batch (one with 0 if nothing was old enough). {"deleted", "olderThanDays"}."""
    if not 0 <= older_than_days <= MAX_PRUNE_DAYS:
        raise ValidationFailed(fields={"olderThanDays": [f"Must be from 0 to {MAX_PRUNE_DAYS}."]})
    detail = {"olderThanDays": older_than_days}

    def audit(conn: Conn, deleted: int) -> None:
        store.ops_insert_audit(conn, actor, "prune", job_ids=[], job_count=deleted,
                               detail=detail)

    deleted = retention.delete_finished_jobs(pool, older_than_days, with_each_batch=audit)
    if deleted == 0:
        with pool.connection() as conn:
            audit(conn, 0)
    return {"deleted": deleted, "olderThanDays": older_than_days}


# --- job types ------------------------------------------------------------------------------

def job_types(conn: Conn) -> list[dict[str, Any]]:
    """Every job type, paused or not: {"type", "paused", "reason", "pausedBy", "pausedAt",
    "heldJobs"} (the last four null or 0 unless paused)."""
    paused = {pause.type: pause for pause in pauses.paused_job_types(conn)}
    return [{"type": job_type.value, "paused": job_type.value in paused,
             "reason": getattr(paused.get(job_type.value), "reason", None),
             "pausedBy": getattr(paused.get(job_type.value), "paused_by", None),
             "pausedAt": getattr(paused.get(job_type.value), "paused_at", None),
             "heldJobs": getattr(paused.get(job_type.value), "held_jobs", 0)}
            for job_type in JobType]


def pause(conn: Conn, actor: str, job_type: str, reason: str) -> dict[str, Any]:
    """Pauses the type (pauses.pause_job_type) and writes the audit row in the same
    transaction: {"type", "changed", "heldBack"}. Pausing a paused type changes nothing
    (its reason stands) and is audited as such."""
    with conn.transaction():
        outcome = pauses.pause_job_type(conn, job_type, actor, reason)
        store.ops_insert_audit(conn, actor, "pause", job_ids=[], job_count=outcome.held_back,
                               detail={"type": outcome.job_type, "reason": reason,
                                       "changed": outcome.changed})
    return {"type": outcome.job_type, "changed": outcome.changed,
            "heldBack": outcome.held_back}


def resume(pool: ConnectionPool, actor: str, job_type: str, *, fair: bool) -> dict[str, Any]:
    """Resumes the type (pauses.resume_job_type: a batch per transaction), then writes the
    audit row: {"type", "changed", "released"}. A resume cut short leaves the type paused
    and no row; the next resume writes one with what it released."""
    with connections.autocommit(pool) as conn:  # each batch commits as it goes
        outcome = pauses.resume_job_type(conn, job_type, actor, fair=fair)
        store.ops_insert_audit(conn, actor, "resume", job_ids=[], job_count=outcome.released,
                               detail={"type": outcome.job_type, "changed": outcome.changed})
    return {"type": outcome.job_type, "changed": outcome.changed,
            "released": outcome.released}


# --- the trail --------------------------------------------------------------------------------

def audit_trail(conn: Conn, cursor: str | None = None,
                limit: int | None = None) -> dict[str, Any]:
    """The audit trail, newest first: {"entries", "nextCursor", "limit"}."""
    size = ops_jobs.page_size(limit)
    before = ops_jobs.decode_cursor(cursor, int)[0] if cursor is not None else None
    rows = store.ops_list_audit(conn, before, size + 1)
    page = rows[:size]
    return {"entries": [ops_jobs.audit_entry(row) for row in page],
            "nextCursor": ops_jobs.encode_cursor(page[-1]["id"]) if len(rows) > size else None,
            "limit": size}

