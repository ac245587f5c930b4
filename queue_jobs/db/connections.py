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

A web pool also fails fast while PostgreSQL is down (`fail_fast=True`): psycopg_pool makes
every checkout wait its whole timeout for reconnects that keep failing, so an outage would
hold each request (and the requests queued behind it for a thread) for seconds. Instead a
checkout that waits more than SUSPECT_AFTER_S asks a probe thread to try a connection of
its own; once a probe fails, checkouts raise DatabaseUnreachable at once, the thread probes
again every PROBE_INTERVAL_S, and the first successful probe (or any new connection the
pool itself makes) ends the outage for the next checkout.

Also here: what counts as PostgreSQL being unreachable (`is_unreachable`), as opposed to a
statement's own error, and the bounded backoff (`Backoff`) of whoever waits for it.
"""

from __future__ import annotations

import contextlib
import logging
import select
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

IDLE_CHECK_S = 1.0
# A checkout still waiting after this long may be meeting a dead server: probe it. Short,
# so that an outage is known well inside a request's budget; a busy pool that merely makes
# a request wait this long costs one extra connect per PROBE_INTERVAL_S at most.
SUSPECT_AFTER_S = 0.25
# While PostgreSQL is down, how often each process tries to connect: the longest a
# recovered database waits to be used again.
PROBE_INTERVAL_S = 0.5
# Retrying while PostgreSQL is unreachable: soon at first (a restart takes seconds), then
# no more often than this, so that a recovered database is used within seconds.
BACKOFF_FIRST_S = 0.5
BACKOFF_LONGEST_S = 2.0

log = logging.getLogger(__name__)
Conn = psycopg.Connection[Any]
AsyncConn = psycopg.AsyncConnection[Any]


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
                                   "configure": _configure_async})


async def _configure_async(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.set_autocommit(True)
    # No sequential scan where an index serves (every statement procrastinate runs has
    # one). A PL/pgSQL statement, such as procrastinate's fetch, gets a generic plan after
    # five calls, costed once with the table sizes of that moment: made while the queue
    # table was nearly empty, it scanned the whole table, and again for each row its lock
    # check looked at, at every fetch until the next ANALYZE. Seen in make bench: a
    # 1,000-job burst drained at 25 jobs/s instead of 160, PostgreSQL at 42 ms of CPU a
    # job instead of 4.5, 480,000 sequential scans in one round. (Planning every call,
    # plan_cache_mode = force_custom_plan, also avoided it, at about 3 ms more per job.)
    await conn.execute("SET enable_seqscan = off")


def _has_unread_input(conn: Conn | psycopg.AsyncConnection[Any]) -> bool:
    """An idle connection has nothing to read unless the server closed it (or sent a
    notice, which the full test then reads)."""
    poller = select.poll()  # not select.select: it refuses descriptors from 1024 up
    poller.register(conn.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class DatabaseUnreachable(PoolTimeout):
    """PostgreSQL did not accept this process's last connection attempt."""


class Reachability:
    """Whether this process reaches PostgreSQL, as far as its last probe knows: `down` is
    None while it does, else why not. One daemon thread probes, started at the first doubt
    and parked on an event while all is well."""

    def __init__(self, conninfo: str, connect_kwargs: dict[str, Any], name: str) -> None:
        self._conninfo = conninfo
        self._connect_kwargs = connect_kwargs
        self._name = name
        self._down: str | None = None
        self._down_since = 0.0
        self._lock = threading.Lock()
        self._doubt = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_back: list[Callable[[], None]] = []

    @property
    def down(self) -> str | None:
        return self._down

    def down_for_s(self) -> float:
        return time.monotonic() - self._down_since if self._down else 0.0

    def on_back(self, callback: Callable[[], None]) -> None:
        """Run `callback()` in the probe thread when a probe succeeds after an outage."""
        self._on_back.append(callback)

    def raise_if_down(self) -> None:
        if self._down is not None:
            raise DatabaseUnreachable(f"PostgreSQL is unreachable: {self._down}")

    def doubt(self) -> None:
        """Something waited too long: probe now (at most once per PROBE_INTERVAL_S)."""
        with self._lock:
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(target=self._probe_loop, daemon=True,
                                                name=f"db-probe-{self._name}")
                self._thread.start()
        self._doubt.set()

    def reached(self) -> None:
        """A connection was made (the pool's or a probe's): the outage, if any, is over."""
        if self._down is not None:
            log.warning("PostgreSQL reachable again after %.1fs (pool %r)",
                        self.down_for_s(), self._name)
            self._down = None

    def close(self) -> None:
        self._closed.set()
        self._doubt.set()

    def _probe_loop(self) -> None:
        while True:
            if self._down is None:  # all well: parked until a checkout doubts
                self._doubt.wait()
                self._doubt.clear()
            if self._closed.is_set():
                return
            self._probe()
            # Down: the next probe after the interval. Up: never more often than that,
            # however many checkouts doubt meanwhile.
            if self._closed.wait(PROBE_INTERVAL_S):
                return

    def _probe(self) -> None:
        try:
            with psycopg.connect(self._conninfo, **self._connect_kwargs):
                pass
        except psycopg.Error as error:
            if not is_unreachable(error):
                # The server answered (too many clients, a refused login): the pool's
                # open connections still work, so requests keep waiting for them.
                self.reached()
                return
            if self._down is None:
                self._down_since = time.monotonic()
                log.warning("PostgreSQL unreachable (pool %r): requests fail fast until a "
                            "probe connects: %s", self._name, error)
            self._down = _short_reason(error)
            return
        if self._down is not None:
            for callback in self._on_back:
                try:
                    callback()
                except Exception:  # the thread must go on probing
                    log.exception("after PostgreSQL came back (pool %r)", self._name)
        self.reached()


def first_line(error: BaseException) -> str:
    """The first line of an error's message ("" if it has none): libpq's messages go on
    with hints on further lines, which a log line or a health answer does without."""
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def _short_reason(error: psycopg.Error) -> str:
    """libpq's last complaint without the host, port or user that precede it (readyz shows
    it to anyone): "Connection refused", "the database system is shutting down"."""
    message = first_line(error)
    reason = message.rsplit("failed: ", 1)[-1].removeprefix("FATAL:").strip()
    return reason[:200] or type(error).__name__


class FailFastPool(ConnectionPool):
    """A ConnectionPool whose checkouts fail at once while PostgreSQL is known down."""

    def __init__(self, *args: Any, reachability: Reachability, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reachability = reachability
        reachability.on_back(self.check)  # drop the connections the outage broke

    def getconn(self, timeout: float | None = None) -> Conn:
        self.reachability.raise_if_down()
        budget = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        while True:
            # In slices: a checkout already waiting learns of the outage within one.
            remaining = deadline - time.monotonic()
            try:
                conn: Conn = super().getconn(max(0.001, min(SUSPECT_AFTER_S, remaining)))
                return conn
            except DatabaseUnreachable:
                raise
            except PoolTimeout:
                self.reachability.doubt()
                if time.monotonic() >= deadline:
                    raise PoolTimeout(f"couldn't get a connection after {budget:.2f} sec") \
                        from None
                self.reachability.raise_if_down()

    def close(self, timeout: float = 5.0) -> None:
        self.reachability.close()
        super().close(timeout)


def open_pool(conninfo: str, *, name: str, min_size: int, max_size: int, timeout: float,
              connect_timeout: int, wait: bool, fail_fast: bool = False) -> ConnectionPool:
    """wait=False: opens at once even while PostgreSQL is down (the pool keeps trying).
    fail_fast: a FailFastPool (a web process's: a request must not wait out an outage)."""
    connect_kwargs = {"connect_timeout": connect_timeout, "keepalives": 1}
    options: dict[str, Any] = dict(
        min_size=min_size, max_size=max_size, timeout=timeout, open=False, name=name,
        kwargs=connect_kwargs, check=_CheckIfIdle(),
        # stop backing off after a few seconds: a recovered database is used at once
        reconnect_timeout=5)
    pool: ConnectionPool
    if fail_fast:
        reachability = Reachability(conninfo, connect_kwargs, name)
        pool = FailFastPool(conninfo, reachability=reachability,
                            configure=lambda _conn: reachability.reached(), **options)
    else:
        pool = ConnectionPool(conninfo, **options)
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
