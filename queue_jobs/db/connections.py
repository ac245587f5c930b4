"""The service's connection pools (a web process's, a worker's, and procrastinate's in a
worker: `async_pool`), one way.

Two costs per checkout are avoided:

- Testing a connection before lending it is one round trip. A connection lent within the
  last IDLE_CHECK_S is tested only if its socket has something to read while idle (a
  server that closed it, after a restart, says so there): a system call, no round trip.
  One idle for longer is tested in full and, if dead, replaced.
- psycopg starts a transaction with its own round trip (BEGIN) and ends it with another
  (COMMIT). A unit of work that is one statement takes `autocommit(pool)`, which runs it
  outside a transaction: one round trip instead of three. Everything else keeps
  `pool.connection()` and its transaction.

Also here: what counts as PostgreSQL being unreachable (`is_unreachable`), as opposed to a
statement's own error, and the bounded backoff (`Backoff`) of whoever waits for it.
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
from psycopg_pool import AsyncConnectionPool, ConnectionPool

IDLE_CHECK_S = 1.0
# Retrying while PostgreSQL is unreachable: soon at first (a restart takes seconds), then
# no more often than this, so that a recovered database is used within seconds.
BACKOFF_FIRST_S = 0.5
BACKOFF_LONGEST_S = 2.0

Conn = psycopg.Connection[Any]


class _LentRecently:
    """When each connection was last lent, and whether it needs a test before the next."""

    def __init__(self) -> None:
        self._lent: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def needs_test(self, conn: Conn | psycopg.AsyncConnection[Any]) -> bool:
        now = time.monotonic()
        last = self._lent.get(conn)
        self._lent[conn] = now
        return last is None or now - last > IDLE_CHECK_S or _has_unread_input(conn)


class _CheckIfIdle:
    """A ConnectionPool's `check`."""

    def __init__(self) -> None:
        self._lending = _LentRecently()

    def __call__(self, conn: Conn) -> None:
        if self._lending.needs_test(conn):
            ConnectionPool.check_connection(conn)


class _CheckIfIdleAsync:
    """An AsyncConnectionPool's `check`."""

    def __init__(self) -> None:
        self._lending = _LentRecently()

    async def __call__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self._lending.needs_test(conn):
            await AsyncConnectionPool.check_connection(conn)


class _OpensWithoutWaiting(AsyncConnectionPool):
    """procrastinate opens its pool with wait=True: while PostgreSQL is down that fails
    the worker's start after 30 s. This pool opens at once; the worker then waits for the
    database statement by statement (queue_jobs.worker.resilient)."""

    async def open(self, wait: bool = False, timeout: float = 30.0) -> None:
        await super().open(wait=False, timeout=timeout)


def async_pool(**kwargs: Any) -> AsyncConnectionPool:
    """procrastinate's pool_factory: its pool, with our `check` instead of a round trip
    before every statement it runs (procrastinate passes `check`; ours replaces it), and
    autocommit connections: each of its statements is a call of one of its functions, so
    a transaction around it only adds a BEGIN and a COMMIT round trip. (Set here, not as
    the connector's `configure`, which procrastinate would also hand to a sync pool.)"""
    return _OpensWithoutWaiting(**{**kwargs, "check": _CheckIfIdleAsync(),
                                   "configure": _autocommit_async})


async def _autocommit_async(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.set_autocommit(True)


def _has_unread_input(conn: Conn | psycopg.AsyncConnection[Any]) -> bool:
    """An idle connection has nothing to read unless the server closed it (or sent a
    notice, which the full test then reads)."""
    poller = select.poll()  # not select.select: it refuses descriptors from 1024 up
    poller.register(conn.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def open_pool(conninfo: str, *, name: str, min_size: int, max_size: int, timeout: float,
              connect_timeout: int, wait: bool) -> ConnectionPool:
    """wait=False: opens at once even while PostgreSQL is down (the pool keeps trying)."""
    pool = ConnectionPool(
        conninfo, min_size=min_size, max_size=max_size, timeout=timeout, open=False,
        name=name, kwargs={"connect_timeout": connect_timeout, "keepalives": 1},
        check=_CheckIfIdle(),
        # stop backing off after a few seconds: a recovered database is used at once
        reconnect_timeout=5)
    pool.open(wait=wait)
    return pool


@contextmanager
def autocommit(pool: ConnectionPool, timeout: float | None = None) -> Iterator[Conn]:
    """A connection for one statement, committed as it runs. timeout: longest wait for a
    connection (None: the pool's)."""
    with pool.connection(timeout=timeout) as conn:
        conn.autocommit = True
        try:
            yield conn
        finally:
            # back to the pool as pool.connection() users expect it (a broken connection
            # refuses; the pool discards it anyway)
            with contextlib.suppress(psycopg.Error):
                conn.autocommit = False


def is_unreachable(error: BaseException) -> bool:
    """The database could not be reached or went away: refused or lost connections, a
    server shutting down or starting up, no pooled connection in time (PoolTimeout).
    procrastinate wraps these in its ConnectorException, hence the walk along __cause__.
    A statement's own failure (a constraint, a syntax error) is not one: retrying would
    not help."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, psycopg.OperationalError):
            state = seen.sqlstate
            # No SQLSTATE: the client's (connection refused or closed, pool timeout).
            # 08: connection exception; 57P: shutdown, crash, cannot connect now.
            if state is None or state.startswith(("08", "57P")):
                return True
        seen = seen.__cause__
    return False


class Backoff:
    """Delays between attempts: BACKOFF_FIRST_S, doubling, at most BACKOFF_LONGEST_S."""

    def __init__(self) -> None:
        self._next = BACKOFF_FIRST_S

    def delay(self) -> float:
        delay, self._next = self._next, min(self._next * 2, BACKOFF_LONGEST_S)
        return delay

    def reset(self) -> None:
        self._next = BACKOFF_FIRST_S
