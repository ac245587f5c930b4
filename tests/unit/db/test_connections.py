"""A web pool fails fast once a probe says PostgreSQL is down (queue_jobs.db.connections),
here against a loopback port nobody listens on: no database needed."""

from __future__ import annotations

import time

import psycopg
import pytest

from queue_jobs.db import connections
from queue_jobs.services.errors import UNAVAILABLE_RETRY_AFTER_S, QueueUnavailable
from tests.integration.support import free_port, wait_until

DB_WAIT_S = 2.5


@pytest.fixture
def nobody_listening() -> str:
    return f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"


def test_a_checkout_learns_of_the_outage_fast_and_the_next_ones_fail_at_once(
        nobody_listening: str) -> None:
    pool = connections.open_pool(nobody_listening, name="test", min_size=1, max_size=2,
                                 timeout=DB_WAIT_S, connect_timeout=2, wait=False,
                                 fail_fast=True)
    try:
        started = time.monotonic()
        with pytest.raises(connections.DatabaseUnreachable, match="Connection refused"):
            pool.getconn()
        first = time.monotonic() - started
        assert first < 1.0, first  # well inside DB_WAIT_S: within a slice or two

        started = time.monotonic()
        for _ in range(20):
            with pytest.raises(connections.DatabaseUnreachable), pool.connection():
                pass
        assert time.monotonic() - started < 0.1  # no wait at all now
        assert isinstance(pool, connections.FailFastPool)
        assert pool.reachability.down == "Connection refused"
    finally:
        pool.close()


def test_a_pool_without_fail_fast_still_waits_its_timeout(nobody_listening: str) -> None:
    pool = connections.open_pool(nobody_listening, name="test", min_size=1, max_size=1,
                                 timeout=0.5, connect_timeout=2, wait=False)
    try:
        started = time.monotonic()
        with pytest.raises(connections.PoolTimeout) as raised:
            pool.getconn()
        assert not isinstance(raised.value, connections.DatabaseUnreachable)
        assert time.monotonic() - started >= 0.5
    finally:
        pool.close()


def test_the_probe_clears_the_outage_when_the_server_is_back() -> None:
    """A probe that connects ends the outage; here `reached` stands in for it (the real
    restart is tests/integration/test_database_outage.py)."""
    reachability = connections.Reachability(
        f"postgresql://nobody@127.0.0.1:{free_port()}/nothing", {"connect_timeout": 2}, "test")
    try:
        reachability.doubt()
        wait_until(lambda: reachability.down, timeout=5, message="the probe to fail")
        with pytest.raises(connections.DatabaseUnreachable):
            reachability.raise_if_down()
        reachability.reached()
        assert reachability.down is None
        reachability.raise_if_down()
    finally:
        reachability.close()


@pytest.mark.parametrize(("error", "down"), [
    (psycopg.OperationalError("connection failed: connection to server at \"10.0.0.5\", "
                              "port 5432 failed: Connection refused\n\tIs the server running"),
     True),
    (psycopg.errors.lookup("57P03")("the database system is shutting down"), True),
    (psycopg.errors.lookup("53300")("sorry, too many clients already"), False),
    (psycopg.errors.lookup("28P01")("password authentication failed"), False),
])
def test_only_a_server_that_accepts_nobody_counts_as_down(error: psycopg.Error,
                                                          down: bool) -> None:
    assert connections.is_unreachable(error) is down


def test_the_reason_shown_leaves_out_host_and_port() -> None:
    error = psycopg.OperationalError(
        'connection failed: connection to server at "10.0.0.5", port 5432 failed: '
        "FATAL:  the database system is starting up\n")
    assert connections._short_reason(error) == "the database system is starting up"


def test_503s_spread_their_retries_over_the_window() -> None:
    seen = {int(QueueUnavailable().headers["Retry-After"]) for _ in range(200)}
    low, high = UNAVAILABLE_RETRY_AFTER_S
    assert seen == set(range(low, high + 1))
