"""Pausing and resuming a job type: its queued jobs wait, with the reason shown to users.

While a type is paused its new jobs (and retries) are accepted and stay `queued` with no
dispatch, and the queued jobs no worker had taken when it was paused lose theirs (held);
runs already started finish. A resume dispatches the held jobs in creation order, in
batches, and only then drops the pause. The rules that keep every dispatch of the type
out while it is paused live in SQL (sql/functions/jobs_dispatch_unless_paused.sql, the
type's lock); this module is what callers (the ops API, the command line) use: each call
says whether it changed anything, for their audit trail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from queue_jobs.db import store
from queue_jobs.db.store import Conn
from queue_jobs.models import JobType, JobTypePause
from queue_jobs.observability import logs
from queue_jobs.services.errors import JobTypeNotFound, ValidationFailed

log = logging.getLogger(__name__)

# An operator's reason is shown to every user of the type (pausedReason): a sentence,
# not a report. The table's check holds the same limit (migration 0018).
MAX_REASON_CHARS = 200
# Held jobs dispatched per transaction of a resume: the type's creates wait for each
# batch's commit (the type's lock), and workers start on a batch once it commits.
RESUME_BATCH = 500


@dataclass(frozen=True)
class PauseOutcome:
    job_type: str
    changed: bool  # False: the type was paused already (its pause stands, reason and all)
    held_back: int  # queued jobs whose dispatch this call took back


@dataclass(frozen=True)
class ResumeOutcome:
    job_type: str
    changed: bool  # False: the type was not paused
    released: int  # held jobs this call dispatched


def pause_job_type(conn: Conn, job_type: str, actor: str, reason: str = "") -> PauseOutcome:
    """Pauses the type, in one transaction (the caller's, if it has one open): the pause
    is recorded and the dispatches of its queued jobs that no worker took yet are taken
    back. A job a worker already fetched is running, not queued: it runs."""
    job_type, reason = known_type(job_type), _checked_reason(reason)
    with conn.transaction():
        store.lock_job_type(conn, job_type)
        if not store.insert_job_type_pause(conn, job_type, reason, actor):
            return PauseOutcome(job_type, changed=False, held_back=0)
        held = store.hold_queued_dispatches(conn, job_type)
    logs.event(log, "job_type.paused", type=job_type, actor=actor, heldBack=held)
    return PauseOutcome(job_type, changed=True, held_back=held)


def resume_job_type(conn: Conn, job_type: str, actor: str, *, fair: bool = True,
                    batch: int = RESUME_BATCH) -> ResumeOutcome:
    """Dispatches the type's held jobs, oldest first, `batch` per transaction, and drops
    the pause with the last batch: until then, jobs created meanwhile are held too, and
    take their turn after the older ones. On an autocommit connection each batch commits
    as it goes (a resume cut short leaves the type paused: resume it again); inside the
    caller's transaction they all commit with it. fair: FAIR_DISPATCH."""
    job_type = known_type(job_type)
    released = 0
    while True:
        with conn.transaction():
            store.lock_job_type(conn, job_type)
            if not store.job_type_pause_exists(conn, job_type):
                break
            dispatched = store.dispatch_held_jobs(conn, job_type, batch, fair=fair)
            released += dispatched
            if dispatched < batch:
                store.delete_job_type_pause(conn, job_type)
                logs.event(log, "job_type.resumed", type=job_type, actor=actor,
                           released=released)
                return ResumeOutcome(job_type, changed=True, released=released)
    return ResumeOutcome(job_type, changed=released > 0, released=released)


def paused_job_types(conn: Conn) -> list[JobTypePause]:
    """The paused types, longest paused first, with the number of jobs each holds."""
    return store.paused_job_types(conn)


def known_type(job_type: str) -> str:
    if job_type not in JobType.__members__.values():
        raise JobTypeNotFound(f"No such job type: {job_type!r} (job types: "
                              f"{', '.join(JobType)})")
    return job_type


def _checked_reason(reason: str) -> str:
    reason = " ".join(reason.split())  # one line, as users will read it
    if len(reason) > MAX_REASON_CHARS or not reason.isprintable():
        raise ValidationFailed("The reason is shown to users: at most "
                               f"{MAX_REASON_CHARS} printable characters.", fields={
                                   "reason": [f"At most {MAX_REASON_CHARS} printable "
                                              "characters."]})
    return reason


def paused_message(job_type: str, reason: str) -> str:
    """A held job's pausedReason: the type, and the operator's reason if one was given."""
    what = job_type.replace("-", " ").capitalize()
    return f"{what} is paused by an operator" + (f": {reason}" if reason else ".")
