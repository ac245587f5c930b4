"""The operator's view of every job, whoever owns it: the job search (filters, newest
first, keyset pages), counts by status for a filter, and one job's page.

Filters (any combination; docs/operations.md, "The operator's console"): status, type,
errorCode, owner (a user id, a user's email or a session id), createdFrom / createdTo
(ISO 8601; without a zone: UTC), idPrefix (hex digits of the id's start, hyphens
ignored). Each is served by an index (migration 0019), so a page costs the same at a
million rows as at a hundred. The filter parsers here are the one definition of what a
value may be: the ops API's schema and jobs-admin's flags both call them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from queue_jobs.db import store
from queue_jobs.db.store import Conn
from queue_jobs.models import JobStatus, JobType, Owner, iso_utc
from queue_jobs.services import accounts
from queue_jobs.services.errors import DomainError, JobNotFound, ValidationFailed

DEFAULT_PAGE = 50
MAX_PAGE = 200
_ERROR_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,128}$")  # the API's x-session-id rule
_HEX = re.compile(r"^[0-9a-f]{1,32}$")


class CursorInvalid(DomainError):
    """The cursor is not one this API gave out: start again without it."""

    status = 400
    error_code = "CURSOR_INVALID"


# --- filter values ----------------------------------------------------------------------------

def parse_status(text: str) -> str:
    if text not in tuple(JobStatus):
        raise ValueError(f"Must be one of: {', '.join(JobStatus)}.")
    return text


def parse_type(text: str) -> str:
    if text not in tuple(JobType):
        raise ValueError(f"Must be one of: {', '.join(JobType)}.")
    return text


def parse_error_code(text: str) -> str:
    if not _ERROR_CODE.match(text):
        raise ValueError("Must be an errorCode: A-Z, 0-9 and _, e.g. FETCH_FAILED.")
    return text


@dataclass(frozen=True)
class OwnerFilter:
    kind: str  # "user", "email" or "session"
    value: str


def parse_owner(text: str) -> OwnerFilter:
    """'user:<uuid>', 'session:<id>', or bare: with an @ an email, a UUID a user id, else
    a session id (a session id shaped like a UUID needs its 'session:')."""
    text = text.strip()
    kind, colon, rest = text.partition(":")
    if colon and kind in ("user", "session"):
        text = rest
    elif "@" in text:
        if len(text) > 254:
            raise ValueError("An email is at most 254 characters.")
        return OwnerFilter("email", accounts.normalize_email(text))
    else:
        kind = "user" if _is_uuid(text) else "session"
    if kind == "user":
        if not _is_uuid(text):
            raise ValueError("A user id is a UUID.")
        return OwnerFilter("user", str(uuid.UUID(text)))
    if not _SESSION_ID.match(text):
        raise ValueError("A session id is 8 to 128 characters of A-Z, a-z, 0-9, _ or -.")
    return OwnerFilter("session", text)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def parse_time(text: str) -> datetime:
    """ISO 8601 (a date, or a date and time); without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("Must be an ISO 8601 time, e.g. 2025-01-31T12:00:00Z.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_id_prefix(text: str) -> str:
    prefix = text.strip().lower().replace("-", "")
    if not _HEX.match(prefix):
        raise ValueError("Must be 1 to 32 hex digits (hyphens are ignored).")
    return prefix


@dataclass(frozen=True)
class JobFilter:
    """An operator's filter; None: not filtered on."""

    status: str | None = None
    type: str | None = None
    error_code: str | None = None
    owner: OwnerFilter | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    id_prefix: str | None = None

    @classmethod
    def from_strings(cls, values: Mapping[str, str | None]) -> JobFilter:
        """From the filters' API names (FILTER_NAMES) to text values; every bad or unknown
        one in a ValidationFailed with `fields`, as the API's schemas report them."""
        problems: dict[str, list[str]] = {}
        parsed: dict[str, Any] = {}
        for name, text in values.items():
            if text is None:
                continue
            if name not in FILTERS:
                problems[name] = ["Unknown filter."]
                continue
            attribute, parse = FILTERS[name]
            try:
                parsed[attribute] = parse(text)
            except ValueError as error:
                problems[name] = [str(error)]
        if problems:
            raise ValidationFailed("The filter is invalid.", fields=problems)
        return cls(**parsed)

    def as_json(self) -> dict[str, str]:
        """The filter as given, by API name (the audit row's `filter`; a bulk response)."""
        shown: dict[str, str] = {}
        for name, (attribute, _parse) in FILTERS.items():
            value = getattr(self, attribute)
            if isinstance(value, OwnerFilter):
                shown[name] = f"{value.kind}:{value.value}"
            elif isinstance(value, datetime):
                shown[name] = value.isoformat()
            elif value is not None:
                shown[name] = value
        return shown

    def with_status(self, status: str) -> JobFilter:
        return JobFilter(**{**{f.name: getattr(self, f.name) for f in fields(self)},
                            "status": status})

    def matching(self) -> dict[str, Any]:
        """ops_jobs_matching's arguments (sql/functions/ops_jobs_matching.sql)."""
        owner = self.owner
        low = high = None
        if self.id_prefix is not None:
            low = uuid.UUID(self.id_prefix.ljust(32, "0"))
            high = uuid.UUID(self.id_prefix.ljust(32, "f"))
        return {"status": self.status, "type": self.type, "error_code": self.error_code,
                "user_id": owner.value if owner and owner.kind == "user" else None,
                "email": owner.value if owner and owner.kind == "email" else None,
                "session_id": owner.value if owner and owner.kind == "session" else None,
                "created_from": self.created_from, "created_to": self.created_to,
                "id_low": low, "id_high": high}


# API name -> (JobFilter attribute, parser). jobs-admin's flags are these in kebab case.
FILTERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "status": ("status", parse_status),
    "type": ("type", parse_type),
    "errorCode": ("error_code", parse_error_code),
    "owner": ("owner", parse_owner),
    "createdFrom": ("created_from", parse_time),
    "createdTo": ("created_to", parse_time),
    "idPrefix": ("id_prefix", parse_id_prefix),
}
FILTER_NAMES = tuple(FILTERS)


# --- cursors ----------------------------------------------------------------------------------

def encode_cursor(*values: Any) -> str:
    """An opaque cursor: the last row's sort key, as unpadded base64url JSON."""
    text = json.dumps([str(value) if isinstance(value, uuid.UUID) else
                       value.isoformat() if isinstance(value, datetime) else value
                       for value in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *kinds: Callable[[Any], Any]) -> tuple[Any, ...]:
    """The values encode_cursor wrote, each through its `kinds` converter; CursorInvalid
    for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError("wrong shape")
        return tuple(kind(value) for kind, value in zip(kinds, values, strict=True))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise CursorInvalid() from None


def _aware_time(value: Any) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("no zone")
    return moment


def _job_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    created_at, job_id = decode_cursor(cursor, _aware_time, uuid.UUID)
    return created_at, job_id


def page_size(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed(fields={"limit": [f"Must be from 1 to {MAX_PAGE}."]})
    return limit


# --- search and counts ------------------------------------------------------------------------

def search(conn: Conn, job_filter: JobFilter, cursor: str | None = None,
           limit: int | None = None) -> dict[str, Any]:
    """A page of matching jobs, newest first: {"jobs", "nextCursor", "limit"}. A job
    created while an operator pages (newer than the first page) never shifts later pages:
    a page starts after the previous page's last (created_at, id)."""
    size = page_size(limit)
    rows = store.ops_search_jobs(conn, job_filter.matching(), _job_cursor(cursor), size + 1)
    page = rows[:size]
    next_cursor = (encode_cursor(page[-1]["created_at"], page[-1]["id"])
                   if len(rows) > size else None)
    return {"jobs": [_summary(row) for row in page], "nextCursor": next_cursor,
            "limit": size}


def page_rows(conn: Conn, job_filter: JobFilter, after: tuple[datetime, uuid.UUID] | None,
              limit: int) -> list[dict[str, Any]]:
    """Rows of a page as the store answers them (the bulk actions' batches)."""
    return store.ops_search_jobs(conn, job_filter.matching(), after, limit)


def counts(conn: Conn, job_filter: JobFilter) -> dict[str, int]:
    """How many jobs match, by status (every status, 0 included)."""
    found = store.ops_count_jobs(conn, job_filter.matching())
    return {status.value: found.get(status.value, 0) for status in JobStatus}


def _owner(row: Mapping[str, Any]) -> dict[str, Any]:
    if row["owner_user_id"] is not None:
        return {"kind": "user", "id": str(row["owner_user_id"])}
    return {"kind": "session", "id": row["owner_session_id"]}


def _time(moment: datetime | None) -> str | None:
    return iso_utc(moment) if moment is not None else None


def _summary(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"jobId": str(row["id"]), "type": row["type"], "status": row["status"],
            "progress": row["progress"], "currentStep": row["current_step"],
            "errorCode": row["error_code"], "attempt": row["attempt"], "owner": _owner(row),
            "llmCalls": row["llm_calls"], "llmTokens": row["llm_tokens"],
            "createdAt": _time(row["created_at"]), "updatedAt": _time(row["updated_at"]),
            "finishedAt": _time(row["finished_at"])}


# --- one job's page ---------------------------------------------------------------------------

IMAGE_URL = "/api/v1/images/{}"  # the media route (webapp/views/media.py): the owner's


def job_detail(conn: Conn, job_id: uuid.UUID,
               status_document: Callable[[Conn, uuid.UUID, Owner], Any]) -> dict[str, Any]:
    """Everything about one job. status_document(conn, job_id, owner): the document its
    owner sees (queue_jobs.services.jobs.job_status, passed in by the caller)."""
    row = store.ops_get_job(conn, job_id)
    if row is None:
        raise JobNotFound()
    owner = Owner(row["owner_user_id"], row["owner_session_id"])
    try:
        document = status_document(conn, job_id, owner)
    except DomainError:  # e.g. the owner's account is gone: the owner sees nothing
        document = None
    return {
        "job": {**_summary(row), "lostRuns": row["lost_runs"], "input": row["input"],
                "error": row["error"], "dispatchId": row["dispatch_id"],
                "cancelRequestedAt": _time(row["cancel_requested_at"]),
                "runStartedAt": _time(row["run_started_at"]),
                "stepStartedAt": _time(row["step_started_at"])},
        "owner": {**_owner(row), "email": row["owner_email"]},
        "steps": [{"step": step["step"], "attempt": step["attempt"],
                   "outcome": step["outcome"], "startedAt": _precise(step["started_at"]),
                   "durationMs": step["duration_ms"], "llmCalls": step["llm_calls"],
                   "inputTokens": step["input_tokens"], "outputTokens": step["output_tokens"],
                   "reasks": step["reasks"], "finishedAt": _precise(step["finished_at"])}
                  for step in store.ops_job_steps(conn, job_id)],
        "dispatches": [{"id": dispatch["id"], "status": dispatch["status"],
                        "queue": dispatch["queue_name"], "priority": dispatch["priority"],
                        "attempts": dispatch["attempts"], "workerId": dispatch["worker_id"],
                        "abortRequested": dispatch["abort_requested"],
                        "events": dispatch["events"]}
                       for dispatch in store.ops_job_dispatches(conn, job_id)],
        "images": [{"id": str(image["id"]), "url": IMAGE_URL.format(image["id"]),
                    "prompt": image["prompt"], "createdAt": _time(image["created_at"])}
                   for image in store.ops_job_images(conn, job_id)],
        "statusDocument": document,
        "audit": [audit_entry(entry) for entry in store.ops_job_audit(conn, job_id)],
    }


def _precise(moment: datetime) -> str:
    """Steps last milliseconds: their times to the millisecond."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def audit_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    entry = {"id": row["id"], "at": _precise(row["at"]), "actor": row["actor"],
             "action": row["action"], "jobCount": row["job_count"], "detail": row["detail"]}
    if "filter" in row:
        entry["filter"] = row["filter"]
    if "job_ids" in row:
        entry["jobIds"] = [str(job_id) for job_id in row["job_ids"]]
    return entry
