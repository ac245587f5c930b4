"""One connection that LISTENs to the jobs' change feed, for a web process's live status."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg

from queue_jobs.db.sql_files import named_queries

# A dead server or a cut network: noticed by the liveness query, or by TCP keepalives
# when even that cannot be sent.
_CONNECT_KWARGS = {"autocommit": True, "connect_timeout": 5, "keepalives": 1,
                   "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


def job_changes(conninfo: str, *, liveness_s: float, stopped: Callable[[], bool],
                application_name: str,
                on_socket: Callable[[int], None] = lambda fileno: None) -> Iterator[str | None]:
    """The payloads of `jobs_changed` as they arrive. Yields None once listening (from
    then on no change is missed; `on_socket` has the connection's socket first), and
    after every `liveness_s` of quiet, once the connection answered a query. Raises
    psycopg.Error when the connection is lost."""
    queries = named_queries()
    with psycopg.connect(conninfo, application_name=application_name,
                         **_CONNECT_KWARGS) as conn:  # type: ignore[arg-type]
        conn.execute(queries["listen_job_changes"].encode())
        on_socket(conn.pgconn.socket)
        yield None
        while not stopped():
            received = False
            for notify in conn.notifies(timeout=liveness_s):
                received = True
                yield notify.payload
            if not received:
                conn.execute(queries["ping"].encode())
                yield None
