"""Fair use at job creation: active-job limits per owner, a creation rate per client
address, and Idempotency-Key replays.

The limits are checked by the create statement itself (store.create_job), under the
owner's lock: one owner's creates are serialised, so the limit cannot be raced past, and
a refused create writes nothing, so it does not count against the address either. An
Idempotency-Key is looked up in the create's transaction, under the same lock.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from queue_jobs import models
from queue_jobs.db import store
from queue_jobs.db.store import Conn
from queue_jobs.models import Owner
from queue_jobs.services.errors import IdempotencyKeyReused, RateLimited

ADDRESS_WINDOW_S = 60
DEFAULT_RETRY_AFTER_S = 30  # when no active job has an estimate yet


@dataclass(frozen=True)
class FairUse:
    max_active_per_session: int = 5
    max_active_per_user: int = 20
    creates_per_address_per_minute: int = 60  # 0: no limit
    idempotency_window_s: int = 24 * 3600
    # Dispatch priority by the owner's fair turn (round robin between owners); off: FIFO.
    fair_dispatch: bool = True


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


def create_limits(policy: FairUse, owner: Owner, address: str) -> models.CreateLimits:
    return models.CreateLimits(max_active=_max_active(policy, owner),
                              address_key=f"create-address:{address}",
                              address_limit=max(0, policy.creates_per_address_per_minute),
                              address_window_s=ADDRESS_WINDOW_S,
                              fair_dispatch=policy.fair_dispatch)


def refusal(outcome: models.CreateOutcome, owner: Owner, policy: FairUse,
            seconds_until_one_ends: Callable[[], int | None]) -> RateLimited | None:
    """Why store.create_job refused, as the error to answer; None if it created."""
    if outcome.refused == "active_jobs":
        return _too_many_active(owner, policy, seconds_until_one_ends)
    if outcome.refused == "address_rate":
        allowed = policy.creates_per_address_per_minute
        return RateLimited(f"At most {allowed} jobs per minute may be created from one "
                           "address.", retry_after_s=outcome.retry_after_s or ADDRESS_WINDOW_S)
    assert outcome.refused is None, outcome.refused
    return None


def check_active_jobs(conn: Conn, owner: Owner, policy: FairUse,
                      seconds_until_one_ends: Callable[[], int | None]) -> None:
    """RateLimited if the owner has more active jobs than allowed (after a retry made
    one active again, in the retry's transaction)."""
    if store.count_active_jobs(conn, owner) > _max_active(policy, owner):
        raise _too_many_active(owner, policy, seconds_until_one_ends)


def _max_active(policy: FairUse, owner: Owner) -> int:
    return policy.max_active_per_user if owner.user_id else policy.max_active_per_session


def _too_many_active(owner: Owner, policy: FairUse,
                     seconds_until_one_ends: Callable[[], int | None]) -> RateLimited:
    who = "user" if owner.user_id else "session"
    retry_after = seconds_until_one_ends() or DEFAULT_RETRY_AFTER_S
    return RateLimited(f"A {who} may have at most {_max_active(policy, owner)} queued or "
                       "running jobs; wait for one to finish or cancel one.",
                       retry_after_s=max(1, retry_after))
