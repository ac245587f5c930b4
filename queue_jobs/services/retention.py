"""Deleting in batches, each its own short transaction, so a big deletion never holds many
locks or blocks vacuum: the hourly housekeeping (queue_jobs.worker.housekeeping) and an
operator's prune (queue_jobs.services.ops_actions) delete finished jobs the same way."""

from __future__ import annotations

from collections.abc import Callable

from psycopg_pool import ConnectionPool

from queue_jobs.db import connections, store
from queue_jobs.db.store import Conn

BATCH = 5000


def in_batches(pool: ConnectionPool, delete: Callable[[Conn, int], int],
               batch: int = BATCH) -> int:
    """Calls delete(conn, batch) until a call deletes fewer than `batch`; the total."""
    total = 0
    while True:
        with connections.autocommit(pool) as conn:  # each batch its own short transaction
            deleted = delete(conn, batch)
        total += deleted
        if deleted < batch:
            return total


def delete_finished_jobs(pool: ConnectionPool, older_than_days: int, batch: int = BATCH,
                         with_each_batch: Callable[[Conn, int], None] | None = None) -> int:
    """Finished jobs older than `older_than_days` (their images, step records and
    idempotency keys with them; saved posts stay). with_each_batch(conn, deleted) runs in
    each batch's transaction after its delete (an operator's prune writes its audit row
    there), for a batch that deleted something."""
    def one_batch(conn: Conn, size: int) -> int:
        with conn.transaction():
            deleted = store.delete_old_finished_jobs(conn, older_than_days, size)
            if deleted and with_each_batch is not None:
                with_each_batch(conn, deleted)
        return deleted

    return in_batches(pool, one_batch, batch)
