"""The web side's way to PostgreSQL and to in-process runs: it opens its pool here, reads
in autocommit here, and gets the resources its synchronous runs use in this process."""

from __future__ import annotations

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from queue_jobs.config.settings import QueueSettings
from queue_jobs.db.connections import Conn, autocommit, open_pool
from queue_jobs.runs.resources import InProcessResources, provider_for

__all__ = ["Conn", "ConnectionPool", "InProcessResources", "autocommit", "in_process_resources",
           "open_pool"]

# What a request meets when PostgreSQL is unreachable: no connection within the pool's
# timeout, or a connection that failed under it. The API answers 503 QUEUE_UNAVAILABLE.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (PoolTimeout, psycopg.OperationalError)


def in_process_resources(settings: QueueSettings, pool: ConnectionPool) -> InProcessResources:
    """What this web process runs the deprecated synchronous pipelines with."""
    return InProcessResources(settings, pool, provider_for(settings))
