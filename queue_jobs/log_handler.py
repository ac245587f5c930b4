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
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import weakref
from typing import TextIO

MAX_PENDING = 10_000  # lines; past that a caller waits for the writer (bounded memory)
FLUSH_TIMEOUT_S = 5.0
BATCH_WAIT_S = 0.05


class QueuedStreamHandler(logging.StreamHandler[TextIO]):
    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._pending: queue.SimpleQueue[str | threading.Event] = queue.SimpleQueue()
        self._writer_pid: int | None = None  # the process whose writer drains _pending
        # Held while the writer writes. A fork waits for it: a child forked mid-write
        # would inherit the stream's buffer locked, and hang at its first line.
        self._writing = threading.Lock()
        _hold_during_fork(self)

    def handle(self, record: logging.LogRecord) -> bool:
        """As Handler.handle, without taking the handler's lock: emitting waits on nothing."""
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:  # as StreamHandler: report a line that cannot be written, go on
            self.handleError(record)
            return
        if self._writer_pid != os.getpid():
            self._start_writer()
        self._pending.put(line)
        if self._pending.qsize() > MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        """Returns once every line queued before the call is written (or after a timeout,
        if the stream is stuck)."""
        if self._writer_pid == os.getpid():
            written = threading.Event()
            self._pending.put(written)
            written.wait(FLUSH_TIMEOUT_S)

    def _start_writer(self) -> None:
        self.acquire()  # the handler's lock, which logging renews in a forked child
        try:
            if self._writer_pid == os.getpid():
                return
            self._pending = queue.SimpleQueue()
            threading.Thread(target=self._write_forever, args=(self._pending,),
                             name="log-writer", daemon=True).start()
            self._writer_pid = os.getpid()
        finally:
            self.release()

    def _write_forever(self, pending: queue.SimpleQueue[str | threading.Event]) -> None:
        while True:
            batch = [pending.get()]
            if isinstance(batch[0], str):
                # Let lines pile up: one wake-up and one write for many (a wake-up per
                # line cost a busy web process 5 % of its requests, bench/run.py).
                time.sleep(BATCH_WAIT_S)
            while not pending.empty() and len(batch) < MAX_PENDING:
                batch.append(pending.get_nowait())
            lines = "".join(item for item in batch if isinstance(item, str))
            if lines:
                with self._writing:
                    try:
                        self.stream.write(lines)
                        self.stream.flush()
                    except Exception:  # a closed or broken stream: say so, go on
                        self.handleError(logging.makeLogRecord({"msg": lines[:200]}))
            for item in batch:
                if isinstance(item, threading.Event):
                    item.set()


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
