"""A worker process's link to PostgreSQL: reachable or not, since when, and whether a
stopping worker has given up waiting for it.

Shared by the worker's event loop (queue_jobs.worker.resilient notices outages and
reconnections), its job runs (their writes wait for the database until the worker gives
them up at shutdown), the reaper (it judges other workers' silence only over time in which
this worker could reach the database) and /healthz. Plain attributes, written by the event
loop, read from any thread.
"""

from __future__ import annotations

import logging
import threading
import time

from queue_jobs.db.connections import first_line

log = logging.getLogger("queue_jobs.worker")
LINK = "database_link"  # its key in the jobs' additional_context


class DatabaseLink:
    def __init__(self) -> None:
        self.reachable = True
        self.reason: str | None = None  # why not, while unreachable
        self.lost_at: float | None = None  # time.monotonic() of the outage's start
        self.reconnected_at: float | None = None  # of the last reconnection, if any
        # Set by a stopping worker once it stops waiting for the database: its runs' last
        # writes (failures, hand-backs) give up, and what they could not write is left to
        # the reaper.
        self.given_up = threading.Event()

    def lost(self, error: BaseException) -> None:
        detail = first_line(error)
        if not detail and error.__cause__ is not None:
            detail = first_line(error.__cause__)
        self.reason = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
        if self.reachable:
            self.reachable = False
            self.lost_at = time.monotonic()
            log.warning("database unreachable (%s): waiting for it, jobs keep running",
                        self.reason)

    def regained(self) -> bool:
        """True if the database was unreachable until now."""
        if self.reachable:
            return False
        now = time.monotonic()
        log.warning("database reachable again after %.1f s", now - (self.lost_at or now))
        self.reachable, self.reason, self.reconnected_at = True, None, now
        return True

    def up_for_s(self) -> float | None:
        """Seconds since this worker last reconnected, None if it never lost the database:
        a worker's start is no evidence of an outage."""
        if self.reconnected_at is None:
            return None
        return time.monotonic() - self.reconnected_at
