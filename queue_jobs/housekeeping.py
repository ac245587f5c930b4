"""Deletes bookkeeping rows nobody will read again: expired idempotency keys and ended
rate-limit windows. Each row carries its own end (expires_at), so this needs no settings.
Deletes run in small batches, each its own short transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from queue_jobs import store
from queue_jobs.store import Conn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    idempotency_keys: int
    rate_limits: int


BATCH = 5000


def sweep(pool: ConnectionPool, batch: int = BATCH) -> SweepReport:
    report = SweepReport(
        idempotency_keys=_in_batches(pool, store.delete_expired_idempotency_keys, batch),
        rate_limits=_in_batches(pool, store.delete_expired_rate_limits, batch))
    if report.idempotency_keys or report.rate_limits:
        log.info("housekeeping: %s", report)
    return report


def _in_batches(pool: ConnectionPool, delete: Callable[[Conn, int], int], batch: int) -> int:
    total = 0
    while True:
        with pool.connection() as conn:
            deleted = delete(conn, batch)
        total += deleted
        if deleted < batch:
            return total
