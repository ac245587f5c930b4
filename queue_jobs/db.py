"""The service's connection pools (a web process's, a worker's), one way.

Two costs per checkout are avoided, both found by the benchmarks (bench/results.md):

- Testing a connection before lending it is one round trip. A connection lent within the
  last IDLE_CHECK_S is tested only if its socket has something to read while idle (a
  server that closed it, after a restart, says so there): a system call, no round trip.
  One idle for longer is tested in full and, if dead, replaced.
- psycopg starts a transaction with its own round trip (BEGIN) and ends it with another
  (COMMIT). A unit of work that is one statement takes `autocommit(pool)`, which runs it
  outside a transaction: one round trip instead of three. Everything else keeps
  `pool.connection()` and its transaction.
"""

from __future__ import annotations

import contextlib
import select
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

IDLE_CHECK_S = 1.0

Conn = psycopg.Connection[Any]


class _LentRecently:
    """A pool's `check`: when each connection was last lent, and whether it needs a test."""

    def __init__(self) -> None:
        self._lent: weakref.WeakKeyDictionary[Conn, float] = weakref.WeakKeyDictionary()

    def __call__(self, conn: Conn) -> None:
        now = time.monotonic()
        last = self._lent.get(conn)
        self._lent[conn] = now
        if last is None or now - last > IDLE_CHECK_S or _has_unread_input(conn):
            ConnectionPool.check_connection(conn)


def _has_unread_input(conn: Conn) -> bool:
    """An idle connection has nothing to read unless the server closed it (or sent a
    notice, which the full test then reads)."""
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    return bool(readable)


def open_pool(conninfo: str, *, name: str, min_size: int, max_size: int, timeout: float,
              connect_timeout: int, wait: bool) -> ConnectionPool:
    """wait=False: opens at once even while PostgreSQL is down (the pool keeps trying)."""
    pool = ConnectionPool(
        conninfo, min_size=min_size, max_size=max_size, timeout=timeout, open=False,
        name=name, kwargs={"connect_timeout": connect_timeout, "keepalives": 1},
        check=_LentRecently(),
        # stop backing off after a few seconds: a recovered database is used at once
        reconnect_timeout=5)
    pool.open(wait=wait)
    return pool


@contextmanager
def autocommit(pool: ConnectionPool) -> Iterator[Conn]:
    """A connection for one statement, committed as it runs."""
    with pool.connection() as conn:
        conn.autocommit = True
        try:
            yield conn
        finally:
            # back to the pool as pool.connection() users expect it (a broken connection
            # refuses; the pool discards it anyway)
            with contextlib.suppress(psycopg.Error):
                conn.autocommit = False
