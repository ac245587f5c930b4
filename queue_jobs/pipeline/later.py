"""Run a function a little later, cancellably, from one shared thread.

threading.Timer starts a thread per call; the runner arms one for nearly every step, and
for quick steps that thread cost more than the step. One daemon thread keeps a heap of
deadlines instead.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Handle:
    def __init__(self, fn: Callable[[], None]) -> None:
        self._fn = fn
        self._state = "armed"  # armed | running | done | cancelled
        self._lock = threading.Lock()
        self._finished = threading.Event()

    def cancel(self) -> None:
        """Never runs after this returns; if it is running now (in another thread), waits
        for it to end."""
        with self._lock:
            if self._state == "armed":
                self._state = "cancelled"
                self._finished.set()
                return
        if threading.current_thread() is not _scheduler.thread:
            self._finished.wait()

    def _run(self) -> None:
        with self._lock:
            if self._state != "armed":
                return
            self._state = "running"
        try:
            self._fn()
        except Exception:  # the shared thread must go on for everyone else
            log.exception("a delayed call failed")
        finally:
            self._state = "done"
            self._finished.set()


class _Scheduler:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Handle]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self.thread: threading.Thread | None = None

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> Handle:
        handle = Handle(fn)
        with self._wake:
            entry = (time.monotonic() + delay_s, next(self._order), handle)
            heapq.heappush(self._heap, entry)
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="call-later",
                                               daemon=True)
                self.thread.start()
            if self._heap[0] is entry:
                # Woken only when its wait must end sooner: a waking thread per quick step
                # cost more than the step (cancelled calls simply fall due, doing nothing).
                self._wake.notify()
        return handle

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wake.wait(timeout)
                _, _, handle = heapq.heappop(self._heap)
            handle._run()


_scheduler = _Scheduler()
call_later = _scheduler.call_later
