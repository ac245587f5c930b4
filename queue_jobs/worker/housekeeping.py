"""Deletes what nobody will read again: finished jobs past JOB_RETENTION_DAYS (their
images, step records and idempotency keys with them; saved posts stay), expired
idempotency keys, ended rate-limit windows (each carries its own end), and procrastinate's
rows (and events) of dispatches that ended over a day ago. Deletes run in small batches,
each its own short transaction, so the sweep never holds many locks or blocks vacuum.
The llm_usage_daily rollup is kept: a few rows a day, and the spend history outlives jobs."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from queue_jobs.db import store
from queue_jobs.services import retention
from queue_jobs.services.retention import BATCH, in_batches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    jobs: int
    idempotency_keys: int
    rate_limits: int
    dispatches: int = 0


# Ended procrastinate rows stay this long for procrastinate's own tools (its shell, admin).
DISPATCH_KEEP_HOURS = 24


def sweep(pool: ConnectionPool, retention_days: int, batch: int = BATCH) -> SweepReport:
    report = SweepReport(
        jobs=retention.delete_finished_jobs(pool, retention_days, batch),
        idempotency_keys=in_batches(pool, store.delete_expired_idempotency_keys, batch),
        rate_limits=in_batches(pool, store.delete_expired_rate_limits, batch),
        dispatches=in_batches(pool, lambda conn, size: store.delete_finished_dispatches(
            conn, DISPATCH_KEEP_HOURS, size), batch))
    if any(vars(report).values()):
        log.info("housekeeping: %s", report)
    return report

