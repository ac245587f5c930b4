"""The web side's way to PostgreSQL and to in-process runs: it opens its pool here, reads
in autocommit here, asks here whether PostgreSQL is known to be down, and gets the
resources its synchronous runs use in this process."""

from __future__ import annotations

import sys

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from queue_jobs.config.settings import QueueSettings
from queue_jobs.db.connections import (
    Conn,
    DatabaseUnreachable,
    FailFastPool,
    autocommit,
    open_pool,
)
from queue_jobs.runs.resources import InProcessResources, provider_for

__all__ = ["Conn", "ConnectionPool", "DatabaseUnreachable", "InProcessResources", "autocommit",
           "in_process_resources", "open_pool", "unreachable_reason"]

# What a request meets when PostgreSQL is unreachable: no connection within the pool's
# timeout, a pool that knows the database is down (DatabaseUnreachable, a PoolTimeout, at
# once), or a connection that failed under it. The API answers 503 QUEUE_UNAVAILABLE.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (PoolTimeout, psycopg.OperationalError)


def unreachable_reason(pool: ConnectionPool) -> str | None:
    """Why this process cannot reach PostgreSQL (its last probe's answer), or None while
    nothing says so (a pool without probes never knows)."""
    if isinstance(pool, FailFastPool):
        return pool.reachability.down
    return None


def check_cooperative_waits() -> None:
    """Under gevent's monkey-patching, psycopg must wait cooperatively: it chooses how when
    it is imported, so an import before the patching (see webapp/green.py) would let one
    waiting connection (the live-status listener) stall the whole process. Refuse to start
    rather than serve that way."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("select"):
        return
    from psycopg import waiting

    if waiting.wait is getattr(waiting, "wait_c", None):
        raise RuntimeError("psycopg was imported before gevent's monkey-patching: its waits "
                           "would block the process (import order, see webapp/green.py)")


def in_process_resources(settings: QueueSettings, pool: ConnectionPool) -> InProcessResources:
    """What this web process runs the deprecated synchronous pipelines with."""
    return InProcessResources(settings, pool, provider_for(settings))
