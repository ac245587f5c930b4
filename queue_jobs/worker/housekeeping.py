"""Deletes what nobody will read again: finished jobs past JOB_RETENTION_DAYS (their
images, step records and idempotency keys with them; saved posts stay), expired
idempotency keys, ended rate-limit windows (each carries its own end), and procrastinate's
rows (and events) of dispatches that ended over a day ago. Deletes run in small batches,
each its own short transaction, so the sweep never holds many locks or blocks vacuum.
The llm_usage_daily rollup is kept: a few rows a day, and the spend history outlives jobs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from queue_jobs.db import connections, store
from queue_jobs.db.store import Conn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    jobs: int
    idempotency_keys: int
    rate_limits: int
    dispatches: int = 0


BATCH = 5000
# Ended procrastinate rows stay this long for procrastinate's own tools (its shell, admin).
DISPATCH_KEEP_HOURS = 24


def sweep(pool: ConnectionPool, retention_days: int, batch: int = BATCH) -> SweepReport:
    report = SweepReport(
        jobs=_in_batches(pool, lambda conn, size: store.delete_old_finished_jobs(
            conn, retention_days, size), batch),
        idempotency_keys=_in_batches(pool, store.delete_expired_idempotency_keys, batch),
        rate_limits=_in_batches(pool, store.delete_expired_rate_limits, batch),
        dispatches=_in_batches(pool, lambda conn, size: store.delete_finished_dispatches(
            conn, DISPATCH_KEEP_HOURS, size), batch))
    if any(vars(report).values()):
        log.info("housekeeping: %s", report)
    return report


def _in_batches(pool: ConnectionPool, delete: Callable[[Conn, int], int], batch: int) -> int:
    total = 0
    while True:
        with connections.autocommit(pool) as conn:  # each batch its own short transaction
            deleted = delete(conn, batch)
        total += deleted
        if deleted < batch:
            return total
