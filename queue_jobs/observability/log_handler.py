"""A log handler that never makes the logging thread wait for the log's stream.

logging.StreamHandler writes and flushes each line while holding the handler's lock, so
with eight request threads every line waits for the others' writes (bench/run.py measured
a status poll answering 304 at 640 requests/s with its request line, 900 without). Here
the calling thread formats the line, so what it reads from context (the request id) is
its own, and queues it; one writer thread per process drains the queue into the stream,
as many lines per write as have piled up.

Nothing is lost on a normal exit: logging's shutdown flushes, and `flush` waits until the
writer has written everything queued before it. A process killed outright (SIGKILL,
os._exit) loses the lines of its last moments. A forked child (gunicorn's workers) starts
its own writer with an empty queue: what the parent had queued is the parent's to write.
Past MAX_PENDING queued lines a caller waits for the writer, as it would have waited for
the stream itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
import weakref
from typing import TextIO

MAX_PENDING = 10_000  # lines
FLUSH_TIMEOUT_S = 5.0  # at exit, for a stuck stream
BATCH_WAIT_S = 0.05


class _Stop:
    """Queued by close(): the writer ends once it has written what came before."""


_Item = str | threading.Event | _Stop


class QueuedStreamHandler(logging.StreamHandler[TextIO]):
    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._pending: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_pid: int | None = None  # the process whose writer drains _pending
        # Held while the writer writes. A fork waits for it: a child forked mid-write
        # would inherit the stream's buffer locked, and hang at its first line.
        self._writing = threading.Lock()
        _hold_during_fork(self)

    def handle(self, record: logging.LogRecord) -> bool:
        """As Handler.handle, without taking the handler's lock: emitting waits on nothing."""
        kept = self.filter(record)
        if isinstance(kept, logging.LogRecord):  # Python 3.12: a filter may replace it
            record = kept
        if kept:
            self.emit(record)
        return bool(kept)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            self._ensure_writer()
        except Exception:  # as StreamHandler: report a line that cannot be written, go on
            self.handleError(record)
            return
        self._pending.put(line)
        if self._pending.qsize() > MAX_PENDING:
            self._wait_for_writer(timeout=None)

    def flush(self) -> None:
        """Returns once every line queued before the call is written (or after a timeout,
        if the stream is stuck)."""
        if self._writer_pid == os.getpid():
            self._wait_for_writer(timeout=FLUSH_TIMEOUT_S)

    def close(self) -> None:
        """Writes what is queued, then lets the writer end (a reconfiguration replaces
        this handler; its thread must not stay behind)."""
        if self._writer_pid == os.getpid():
            self._wait_for_writer(timeout=FLUSH_TIMEOUT_S)
            self._pending.put(_Stop())
            self._writer_pid = None
        super().close()

    def _wait_for_writer(self, timeout: float | None) -> None:
        written = threading.Event()
        self._pending.put(written)
        written.wait(timeout)

    def _ensure_writer(self) -> None:
        if self._writer_pid == os.getpid() and self._writer and self._writer.is_alive():
            return
        self.acquire()  # the handler's lock, which logging renews in a forked child
        try:
            if self._writer_pid == os.getpid() and self._writer and self._writer.is_alive():
                return
            if self._writer_pid != os.getpid():  # a new process: the queue was the parent's
                self._pending = queue.SimpleQueue()
            self._writer = threading.Thread(target=self._write_forever, args=(self._pending,),
                                            name="log-writer", daemon=True)
            self._writer.start()
            self._writer_pid = os.getpid()
        finally:
            self.release()

    def _write_forever(self, pending: queue.SimpleQueue[_Item]) -> None:
        while True:
            batch = [pending.get()]
            if isinstance(batch[0], str):
                # Let lines pile up: one wake-up and one write for many (a wake-up per
                # line cost a busy web process 5 % of its requests, bench/run.py).
                time.sleep(BATCH_WAIT_S)
            while not pending.empty() and len(batch) < MAX_PENDING:
                batch.append(pending.get_nowait())
            try:
                self._write([item for item in batch if isinstance(item, str)])
            finally:  # whoever waits for these lines is told, written or not
                for item in batch:
                    if isinstance(item, threading.Event):
                        item.set()
            if any(isinstance(item, _Stop) for item in batch):
                return

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        with self._writing:
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except Exception:  # a closed or broken stream: say so where possible, go on
                # (handleError itself fails when stderr is closed too)
                with contextlib.suppress(Exception):
                    self.handleError(logging.makeLogRecord({"msg": lines[0][:200]}))


def _hold_during_fork(handler: QueuedStreamHandler) -> None:
    """os.fork waits until the handler's writer is between writes (weakly: the hooks
    cannot be unregistered, and must not keep a dropped handler alive)."""
    ref = weakref.ref(handler)

    def before() -> None:
        alive = ref()
        if alive is not None:
            alive._writing.acquire()

    def after() -> None:
        alive = ref()
        if alive is not None:
            alive._writing.release()

    os.register_at_fork(before=before, after_in_parent=after, after_in_child=after)
