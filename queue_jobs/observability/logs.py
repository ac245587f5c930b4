"""Logs as JSON lines: one object per line, for `journalctl -o cat | jq` and any log
shipper. LOG_FORMAT=text gives the plain format for people at a terminal.

Events carry their fields as `extra` (`log.info("job.finished", extra=fields(...))`); the
formatter writes every extra field, plus `requestId` when the line is written while a web
request is handled (webapp sets it), so a request's job events join its request line.
Never put a session id, a token, a password or an API key in a field: owner kinds only.

Lines reach stderr through logging's QueueHandler and QueueListener (QueuedHandler): the
thread that logs formats its line, so the formatter reads that thread's context (the request
id), and queues it; a listener thread of the process writes it. A request thread thus never
waits for the stream, which another thread's write, a full pipe or a slow journal may hold.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import queue
import uuid
import weakref
from contextvars import ContextVar
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from typing import Any, TextIO

from queue_jobs.config.env_reader import SettingsError

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else on a record came in through `extra`.
_RECORD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._second: tuple[int, str] = (-1, "")  # one tuple: threads share formatters

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["requestId"] = request_id
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return _ENCODER.encode(line)

    def _timestamp(self, created: float) -> str:
        """ISO 8601 in UTC, to the millisecond; the part up to the second is kept from the
        line before (a worker writes several lines a job, mostly within the same second)."""
        # As datetime.fromtimestamp rounds: the fraction alone, to the microsecond.
        fraction, whole = math.modf(created)
        micros = round(fraction * 1_000_000)
        second = int(whole) + micros // 1_000_000  # a carry up, or a borrow before 1970
        micros %= 1_000_000
        cached, text = self._second
        if second != cached:
            text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (second, text)
        return f"{text}.{micros // 1000:03d}+00:00"


def _jsonable(value: object) -> object:
    if isinstance(value, uuid.UUID | datetime):
        return str(value)
    return repr(value)


# One encoder for every line (json.dumps with options builds a new one per call);
# encode() keeps no state between calls, so threads can share it.
_ENCODER = json.JSONEncoder(default=_jsonable, ensure_ascii=False)


def configure(*, replace_handlers: bool = True) -> None:
    """At a process's entry point, at LOG_LEVEL (INFO by default; DEBUG adds the web's
    lines for status polls). replace_handlers=False leaves a root logger that already has
    handlers alone (as logging.basicConfig does)."""
    root = logging.getLogger()
    if root.handlers and not replace_handlers:
        return
    level = _level_setting("LOG_LEVEL", os.environ.get("LOG_LEVEL", "INFO"))
    handler = QueuedHandler()
    if os.environ.get("LOG_FORMAT", "json") == "text":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonFormatter())
    replaced, root.handlers[:] = root.handlers[:], [handler]
    for old in replaced:  # its listener thread writes what it holds, then ends
        old.close()
    root.setLevel(level)
    # procrastinate's worker writes two lines per job (started, ended) that our own
    # job.started / job.finished events already say, with more: its warnings and errors
    # stay.
    logging.getLogger("procrastinate.worker").setLevel(
        _level_setting("PROCRASTINATE_LOG_LEVEL",
                       os.environ.get("PROCRASTINATE_LOG_LEVEL", "WARNING")))


def _level_setting(name: str, value: str) -> int:
    given = value.strip().upper()
    level = logging.getLevelName(given)
    if not isinstance(level, int):
        raise SettingsError(f"{name}: no level {given!r}")
    return level


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """One event line: `name` is the message (job.created, step.finished, request, ...).

    As logger.log(level, name, extra=...), without its search of the stack for the
    caller's file and line, which no line of ours shows (a worker writes several events a
    job, a web process one a request)."""
    if logger.isEnabledFor(level):
        logger.handle(logger.makeRecord(logger.name, level, "(event)", 0, name, (),
                                        None, extra={"event": name, **fields}))


class QueuedHandler(QueueHandler):
    """Queues each line, formatted by this handler's formatter in the thread that logs it,
    for a listener thread that writes it to `stream` (stderr by default). For dictConfig:
    `{"()": "queue_jobs.observability.logs.QueuedHandler", "stream": ..., "formatter": ...}`
    ("()", not "class": from Python 3.12, dictConfig wires a QueueHandler named by "class"
    its own way).

    close() writes every line queued before it, then ends the listener: logging.shutdown
    calls it at exit (after the other atexit functions, which may log), a reconfiguration
    on the handler it replaces. A forked child (gunicorn's workers) has no listener, as
    threads do not survive fork: it starts its own, on a new queue, since the lines the
    parent had queued are the parent's to write.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(queue.SimpleQueue())
        # Formats nothing itself: a queued record's message is its whole line.
        self.writer = logging.StreamHandler(stream)
        self._listener: QueueListener | None = self._listen()
        _follow_forks(self)

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
        super().close()

    def _listen(self) -> QueueListener:
        listener = _Listener(self.queue, self.writer)
        listener.start()
        return listener

    def _restart_in_child(self) -> None:
        if self._listener is not None:  # a closed handler stays closed
            self.queue = queue.SimpleQueue()
            self._listener = self._listen()


class _Listener(QueueListener):
    def handle(self, record: logging.LogRecord) -> None:
        # A write that fails is reported by the writer's handleError; should the report
        # fail too (stderr closed), the thread must go on: if it ended, every later line
        # would stay queued for good.
        with contextlib.suppress(Exception):
            super().handle(record)


def _follow_forks(handler: QueuedHandler) -> None:
    """A fork waits until the listener is between writes: a child forked mid-write would
    inherit the stream's buffer locked (it would hang at its first line) or holding a line
    the parent writes too. The child then starts its own listener. (Weakly: the hooks
    cannot be unregistered, and must not keep a dropped handler alive.)"""
    ref = weakref.ref(handler)

    def before() -> None:
        if (alive := ref()) is not None:
            alive.writer.acquire()

    def after_in_parent() -> None:
        if (alive := ref()) is not None:
            alive.writer.release()

    def after_in_child() -> None:
        # logging's own hook, registered when it was imported and so run before this
        # one, has already renewed every handler's lock in the child, the writer's too.
        if (alive := ref()) is not None:
            alive._restart_in_child()

    os.register_at_fork(before=before, after_in_parent=after_in_parent,
                        after_in_child=after_in_child)
