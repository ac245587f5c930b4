"""Fair use at job creation: active-job limits per owner, a creation rate per client
address, and Idempotency-Key replays.

All of it runs inside the create transaction, after `store.lock_owner`: one owner's
creates are serialised, so neither the limit nor a key can be raced past. A request that
is refused rolls back, so it does not count against the address either.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from queue_jobs import rate_limits, store
from queue_jobs.domain_errors import IdempotencyKeyReused, RateLimited
from queue_jobs.store import Conn, Owner

ADDRESS_WINDOW_S = 60
DEFAULT_RETRY_AFTER_S = 30  # when no active job has an estimate yet


@dataclass(frozen=True)
class FairUse:
    max_active_per_session: int = 5
    max_active_per_user: int = 20
    creates_per_address_per_minute: int = 60  # 0: no limit
    idempotency_window_s: int = 24 * 3600


def request_hash(job_type: str, request_body: dict[str, Any]) -> bytes:
    canonical = json.dumps([job_type, request_body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).digest()


def replayed_job(conn: Conn, owner: Owner, key: str, fingerprint: bytes) -> uuid.UUID | None:
    """The job an earlier request with this key created, if any (within the window)."""
    found = store.find_idempotency_key(conn, owner, key)
    if found is None:
        return None
    job_id, earlier_fingerprint = found
    if earlier_fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return job_id


def count_address_creation(conn: Conn, address: str, policy: FairUse) -> None:
    allowed = policy.creates_per_address_per_minute
    if allowed <= 0:
        return
    rate_limits.count(conn, f"create-address:{address}", allowed, ADDRESS_WINDOW_S,
                      f"At most {allowed} jobs per minute may be created from one address.")


def check_active_jobs(conn: Conn, owner: Owner, policy: FairUse,
                      seconds_until_one_ends: Callable[[], int | None], *,
                      already_counted: bool = False) -> None:
    """RateLimited if one more active job would exceed the owner's limit (or, with
    already_counted, if the job just made active did)."""
    allowed = policy.max_active_per_user if owner.user_id else policy.max_active_per_session
    if store.count_active_jobs(conn, owner) - int(already_counted) < allowed:
        return
    who = "user" if owner.user_id else "session"
    retry_after = seconds_until_one_ends() or DEFAULT_RETRY_AFTER_S
    raise RateLimited(f"A {who} may have at most {allowed} queued or running jobs; wait for "
                      "one to finish or cancel one.", retry_after_s=max(1, retry_after))
