"""A held job's status document (pausedReason, no place, no estimate, from the database
or from memory alike) and the checks a pause makes before it touches the database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from queue_jobs.models import JobRow, JobType
from queue_jobs.services import pauses
from queue_jobs.services.errors import JobTypeNotFound, ValidationFailed
from queue_jobs.services.jobs import estimate_in_memory, status_document

NOW = datetime(2026, 1, 29, 12, tzinfo=UTC)


def _queued(**changes: Any) -> JobRow:
    fields: dict[str, Any] = dict(
        id=uuid.UUID(int=1), type="content-generation", owner_user_id=None,
        owner_session_id="sess_12345678", status="queued", progress=0, current_step=None,
        error=None, error_code=None, result=None, step_started_at=None, created_at=NOW,
        updated_at=NOW)
    fields.update(changes)
    return JobRow(**fields)


def test_a_held_job_says_why_and_shows_no_place_or_estimate() -> None:
    held = status_document(_queued(pause_reason="provider outage"), 40, 3)
    assert (held["pausedReason"], held["queuePosition"], held["estimatedTimeRemaining"]) == (
        "Content generation is paused by an operator: provider outage", None, None)
    assert status_document(_queued(pause_reason=""), 40, 3)["pausedReason"] == (
        "Content generation is paused by an operator.")
    waiting = status_document(_queued(), 40, 3)
    assert (waiting["pausedReason"], waiting["queuePosition"]) == (None, 3)
    # Only a queued job is held: a reason on a row that is not queued shows nothing.
    running = status_document(_queued(status="running", pause_reason="x"), 40, None)
    assert running["pausedReason"] is None and running["estimatedTimeRemaining"] == 40


def test_a_held_job_needs_no_estimate_from_memory() -> None:
    """Polls answered from memory: no estimate, and none of the caches it would need."""
    assert estimate_in_memory(_queued(pause_reason="x"), None, NOW) is None


def test_a_pause_checks_its_type_and_reason_first() -> None:
    with pytest.raises(JobTypeNotFound, match="website-analysis, content-generation"):
        pauses.known_type("Website-Analysis")
    assert [pauses.known_type(job_type) for job_type in JobType] == list(JobType)
    for reason in ("x" * (pauses.MAX_REASON_CHARS + 1), "bell\a", "\udc00"):
        with pytest.raises(ValidationFailed):
            pauses.pause_job_type(None, "website-analysis", "ops", reason)  # type: ignore[arg-type]
