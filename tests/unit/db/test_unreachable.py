"""What counts as PostgreSQL being unreachable (retried, waited for) and what does not (a
statement's own error), and the bounded backoff of whoever waits."""

from __future__ import annotations

import psycopg
from procrastinate.exceptions import ConnectorException
from psycopg import errors
from psycopg_pool import PoolTimeout

from queue_jobs.db.connections import BACKOFF_LONGEST_S, Backoff, is_unreachable


def _wrapped(error: BaseException) -> ConnectorException:
    try:
        raise ConnectorException from error
    except ConnectorException as wrapper:
        return wrapper


def test_connection_level_errors_are_unreachable_even_wrapped_by_procrastinate() -> None:
    for error in (psycopg.OperationalError("connection refused"), PoolTimeout("no conn"),
                  errors.AdminShutdown("terminating connection"),
                  errors.CannotConnectNow("starting up"),
                  errors.ConnectionFailure("lost")):
        assert is_unreachable(error), error
        assert is_unreachable(_wrapped(error)), error


def test_a_statements_own_errors_are_not() -> None:
    for error in (errors.UniqueViolation("dup"), errors.SyntaxError("bad"),
                  errors.QueryCanceled("statement timeout"), ValueError("x"),
                  ConnectorException()):
        assert not is_unreachable(error), error
        assert not is_unreachable(_wrapped(error)), error


def test_backoff_doubles_up_to_its_bound_and_resets() -> None:
    backoff = Backoff()
    delays = [backoff.delay() for _ in range(5)]
    assert delays == [0.5, 1.0, 2.0, 2.0, 2.0] and max(delays) == BACKOFF_LONGEST_S
    backoff.reset()
    assert backoff.delay() == 0.5
