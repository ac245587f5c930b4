"""The shapes every layer shares: who owns a job, the job statuses and types, and the rows
the store answers (frozen dataclasses, filled by psycopg's class_row)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# A step's LLM usage per model: {model, calls, input_tokens, output_tokens} (llm.usage.Meter)
UsageRows = Sequence[Mapping[str, Any]]


def iso_utc(moment: datetime) -> str:
    """A timestamp as the API writes it: ISO 8601, UTC, with a Z."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# What iso_utc writes, as a JSON Schema (for the API document).
ISO_UTC: dict[str, Any] = {"type": "string", "format": "date-time", "pattern": "Z$"}


class JobStatus(enum.StrEnum):
    """A job's status as the API and the jobs table spell it."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


class JobType(enum.StrEnum):
    """The job types, as the API's paths and the jobs table spell them."""

    WEBSITE_ANALYSIS = "website-analysis"
    CONTENT_GENERATION = "content-generation"


@dataclass(frozen=True)
class FinishedJob:
    type: str
    elapsed_ms: int  # since the job was created
    # A worker's success that also ended procrastinate's job (store.succeed_job).
    dispatch_finished: bool = False


@dataclass(frozen=True)
class Owner:
    """Who is asking: a user (JWT) or else an anonymous session."""

    user_id: uuid.UUID | None
    session_id: str | None

    def params(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "session_id": self.session_id}

    @property
    def kind(self) -> str:
        """'user' or 'session': what logs may say about an owner (never the id itself)."""
        return "user" if self.user_id else "session"

    @property
    def key(self) -> str:
        """Whom a new job would belong to, as one string (fair use, idempotency keys)."""
        return f"user:{self.user_id}" if self.user_id else f"session:{self.session_id}"


@dataclass(frozen=True)
class JobRow:
    id: uuid.UUID
    type: str
    owner_user_id: uuid.UUID | None
    owner_session_id: str | None
    status: str
    progress: int
    current_step: str | None
    error: str | None
    error_code: str | None
    result: Any
    step_started_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int = 0  # one more at every change of its status document (jobs_bump_version)
    finished_etag: str | None = None  # get_owned_job: set once the job has finished
    dispatch_id: int | None = None  # its procrastinate job (queue position)
    # Held by a pause of its type (queued, no dispatch): the operator's reason ('' for
    # none); None when not held.
    pause_reason: str | None = None

    def visible_to(self, owner: Owner) -> bool:
        """get_owned_job's rule: a user's job to that user, a session's to that session."""
        if self.owner_user_id is not None:
            return self.owner_user_id == owner.user_id
        return owner.session_id is not None and self.owner_session_id == owner.session_id

    @property
    def owner(self) -> Owner:
        """Whom the job belongs to (not necessarily who is asking)."""
        return Owner(self.owner_user_id, None if self.owner_user_id else self.owner_session_id)


@dataclass(frozen=True)
class JobTypePause:
    """A paused job type (job_type_pauses) and how many queued jobs it holds now."""

    type: str
    reason: str
    paused_by: str
    paused_at: datetime
    held_jobs: int


@dataclass(frozen=True)
class ClaimedJob:
    id: uuid.UUID
    type: str
    input: dict[str, Any]
    step_outputs: dict[str, Any]
    step_parts: dict[str, dict[str, Any]]  # what unfinished steps made already: step -> parts
    progress: int
    attempt: int
    current_step: str | None  # the step the row shows as started


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    email: str
    name: str | None


@dataclass(frozen=True)
class Login:
    id: uuid.UUID
    email: str
    name: str | None
    password_hash: str


@dataclass(frozen=True)
class Organization:
    id: uuid.UUID
    name: str
    website_url: str
    analysis: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Post:
    id: uuid.UUID
    organization_id: uuid.UUID
    title: str
    content: str
    excerpt: str
    tags: list[str]
    seo: dict[str, Any]
    visuals: list[dict[str, Any]]
    status: str
    created_at: datetime
    updated_at: datetime

    def summary(self) -> dict[str, Any]:
        """The `savedPost` of a content-generation result."""
        return {"id": str(self.id), "organizationId": str(self.organization_id),
                "title": self.title, "status": self.status,
                "createdAt": iso_utc(self.created_at)}


@dataclass(frozen=True)
class WindowCount:
    hits: int
    window_started_at: datetime  # which window the hit was counted in
    retry_after_s: int


@dataclass(frozen=True)
class RunState:
    status: str
    dispatch_id: int | None
    cancel_requested: bool
    run_started_at: datetime | None


@dataclass(frozen=True)
class CreateLimits:
    """What jobs_create checks, under the owner's lock, before it writes (fair_use)."""

    max_active: int  # the owner's queued and running jobs
    address_key: str  # the creating address's rate counter
    address_limit: int  # creates per window from that address; 0: no limit
    address_window_s: int
    fair_dispatch: bool = True  # the dispatch's priority by its owner's fair turn


@dataclass(frozen=True)
class StepTiming:
    """A step's recent successful runs (ETA): mean and 90th percentile."""

    mean_ms: int
    p90_ms: int


@dataclass(frozen=True)
class QueuePace:
    """How fast the workers take queued jobs (store.queue_pace; ETA's wait)."""

    recent_starts: int  # runs started by workers in the window
    window_s: float
    live_workers: int
    busy_slots: int  # our queue's dispatches those workers are running
    mean_run_s: float | None  # recent successful runs, start to finish


@dataclass(frozen=True)
class CreateOutcome:
    refused: str | None  # 'active_jobs' or 'address_rate': nothing was written
    retry_after_s: int | None  # address_rate: when the address's window ends
    dispatch_id: int | None  # created: its dispatch (inline: the local one, the fence)


@dataclass(frozen=True)
class JobOutcome:
    status: str
    result: Any
    error: str | None
    error_code: str | None
