"""Run a function a little later, cancellably, from one shared thread.

threading.Timer starts a thread per call; the runner arms one for nearly every step, and
for quick steps that thread cost more than the step. One daemon thread keeps a heap of
deadlines instead. Nearly every call is cancelled long before it falls due, and waking at
each cancelled deadline cost more than the quick steps themselves (measured on the no-op
pipeline benchmark, bench/results.md): whenever the thread wakes for a call, the cancelled
ones behind it leave the heap too, so it sleeps until the next call still armed then.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Handle:
    def __init__(self, fn: Callable[[], None]) -> None:
        self._fn = fn
        self.settled = False  # ran, running, or cancelled: it will not start (again)
        self._lock = threading.RLock()  # held while the call runs

    def cancel(self) -> None:
        """Never runs after this returns; if it is running now (in another thread), waits
        for it to end. (From within the call itself, it returns at once.)"""
        with self._lock:
            self.settled = True

    def _run(self) -> None:
        with self._lock:
            if self.settled:
                return
            self.settled = True
            try:
                self._fn()
            except Exception:  # the shared thread must go on for everyone else
                log.exception("a delayed call failed")


class _Scheduler:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Handle]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._wakes_at = math.inf  # when the thread's wait ends; -inf while it runs a call
        self.thread: threading.Thread | None = None

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> Handle:
        handle = Handle(fn)
        deadline = time.monotonic() + delay_s
        with self._wake:
            heapq.heappush(self._heap, (deadline, next(self._order), handle))
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="call-later",
                                               daemon=True)
                self.thread.start()
            if deadline < self._wakes_at:  # only when its wait must end sooner
                self._wakes_at = deadline
                self._wake.notify()
        return handle

    def _loop(self) -> None:
        while True:
            with self._wake:
                handle = self._next_due()
            handle._run()

    def _next_due(self) -> Handle:
        """Waits (holding the condition) until the earliest call falls due. When one does,
        the cancelled calls behind it leave the heap with it, due or not, so the next wait
        is for a call that was still armed then (one cancelled later still ends it)."""
        heap = self._heap
        while True:
            now = time.monotonic()
            if heap and heap[0][0] <= now:
                while heap and heap[0][2].settled:
                    heapq.heappop(heap)
                if heap and heap[0][0] <= now:
                    self._wakes_at = -math.inf
                    return heapq.heappop(heap)[2]
            self._wakes_at = heap[0][0] if heap else math.inf
            self._wake.wait(self._wakes_at - now if heap else None)


_scheduler = _Scheduler()
call_later = _scheduler.call_later
