"""Deletes bookkeeping rows nobody will read again: expired idempotency keys and old
rate-limit windows. Each sweep is one short statement per table (no long transaction)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from queue_jobs import store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    idempotency_keys: int
    rate_limits: int


def sweep(pool: ConnectionPool, *, idempotency_window_s: int) -> SweepReport:
    with pool.connection() as conn:
        keys = store.delete_expired_idempotency_keys(conn, idempotency_window_s)
    with pool.connection() as conn:
        counters = store.delete_expired_rate_limits(conn)
    report = SweepReport(idempotency_keys=keys, rate_limits=counters)
    if keys or counters:
        log.info("housekeeping: %s", report)
    return report
