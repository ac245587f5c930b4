"""Fixed-window counters in PostgreSQL (table rate_limits): one narrow row per key."""

from __future__ import annotations

from datetime import datetime

from queue_jobs.db import store
from queue_jobs.db.store import Conn
from queue_jobs.services.errors import RateLimited


def count(conn: Conn, key: str, allowed: int, window_s: int, refusal: str) -> datetime:
    """Counts one more hit for `key`; RateLimited (with Retry-After) past `allowed` per
    window. A refused hit is not counted.
    Answers the window the hit went to (for `store.release_rate_limit`)."""
    window = store.hit_rate_limit(conn, key, window_s, allowed)
    if window.hits > allowed:
        raise RateLimited(refusal, retry_after_s=window.retry_after_s)
    return window.window_started_at
