"""Log lines: JSON for machines, short text for people at a terminal.

JSON (JsonFormatter): one object per line, for `journalctl -o cat | jq` and any log
shipper. Text (TextFormatter): one short line, `time LEVEL logger: message fields`, the
level in colour at a terminal, a request as `GET /api/v1/jobs/<job_id>/status 404 3.1 ms`.
LOG_FORMAT (json or text) chooses; unset, stderr decides: text at a terminal (`make run`),
JSON otherwise (systemd, a container, a pipe). Colour only in text at a terminal, and never
when NO_COLOR is set (no-color.org).

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
import sys
import time
import uuid
import weakref
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from logging.handlers import QueueHandler, QueueListener
from typing import Any, TextIO, cast

from queue_jobs.config.env_reader import SettingsError

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

LOG_FORMATS = ("json", "text")
# The message of each gunicorn worker's line once it has loaded the app (then its pid), in
# either format: `make run` counts them before its banner (webapp/gunicorn_conf.py).
WEB_WORKER_READY = "web worker ready, pid"
# Attributes every LogRecord has; anything else on a record came in through `extra`.
_RECORD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items()
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_")}


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
        line.update(_extra_fields(record))
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


# SGR codes: dim, the levels' colours, the logger's, and a status by its class.
_DIM, _RESET, _NAME = "\x1b[2m", "\x1b[0m", "\x1b[36m"
_LEVEL_COLOURS = {logging.DEBUG: "\x1b[2m", logging.INFO: "\x1b[32m",
                  logging.WARNING: "\x1b[33m", logging.ERROR: "\x1b[31m",
                  logging.CRITICAL: "\x1b[1;31m"}
_STATUS_COLOURS = {2: "\x1b[32m", 3: "\x1b[36m", 4: "\x1b[33m", 5: "\x1b[31m"}
# A request line's fields, said in its own words (ownerKind and requestId: JSON only).
_REQUEST_FIELDS = ("method", "route", "status", "durationMs", "errorCode", "ownerKind")


class TextFormatter(logging.Formatter):
    """`12:04:05.123 INFO request: GET /api/v1/jobs/<job_id>/status 404 3.1 ms NOT_FOUND`:
    local time, level, the logger's short name (its module, or gunicorn, procrastinate),
    the message, then the event's fields as key=value (none that are null). Colour codes
    only when `color`; a traceback follows its line as it does in the standard format."""

    def __init__(self, color: bool = False) -> None:
        super().__init__()
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        # Our events' fields (event()); other libraries' extras (procrastinate's job
        # dicts) are for machines: JSON only.
        fields = _extra_fields(record) if "event" in vars(record) else {}
        fields.pop("event", None)  # the message itself
        if record.msg == "request" and "route" in fields:
            message = self._request(fields)
            for key in _REQUEST_FIELDS:
                fields.pop(key, None)
        else:
            message = record.getMessage()
        said = " ".join(f"{self._paint(_DIM, key + '=')}{value}"
                        for key, value in fields.items() if value is not None)
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = (f"{self._paint(_DIM, f'{clock}.{int(record.msecs):03d}')} "
                f"{self._paint(_LEVEL_COLOURS.get(record.levelno, ''), record.levelname)} "
                f"{self._paint(_NAME, short_name(record.name))}: {message}"
                f"{' ' + said if said else ''}")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line

    def _request(self, fields: dict[str, Any]) -> str:
        status = fields.get("status")
        colour = _STATUS_COLOURS.get(status // 100, "") if isinstance(status, int) else ""
        words = [str(fields.get("method")), str(fields.get("route")),
                 self._paint(colour, str(status)), f"{fields.get('durationMs')} ms"]
        if fields.get("errorCode"):
            words.append(str(fields["errorCode"]))
        return " ".join(words)

    def _paint(self, colour: str, text: str) -> str:
        return f"{colour}{text}{_RESET}" if self.color and colour else text


@lru_cache(maxsize=256)
def short_name(logger: str) -> str:
    """Our modules by their own name (`webapp.request`: request), others by their package
    (`gunicorn.error`: gunicorn)."""
    top, _, _ = logger.partition(".")
    return logger.rpartition(".")[2] if top in ("queue_jobs", "webapp") else top


def chosen_format(log_format: str | None, stream: TextIO) -> tuple[str, bool]:
    """(json or text, colour): LOG_FORMAT if set, else text at a terminal and JSON
    elsewhere; colour for text at a terminal unless NO_COLOR is set."""
    given = (log_format or "").strip().lower()
    if given and given not in LOG_FORMATS:
        raise SettingsError(f"LOG_FORMAT: {given!r} is not one of {', '.join(LOG_FORMATS)}")
    at_terminal = _is_terminal(stream)
    kind = given or ("text" if at_terminal else "json")
    return kind, kind == "text" and at_terminal and not os.environ.get("NO_COLOR")


def formatter(log_format: str | None = None, stream: TextIO | None = None
              ) -> logging.Formatter:
    """The formatter for lines written to `stream` (stderr); for dictConfig as well
    (webapp/gunicorn_conf.py): `{"()": "queue_jobs.observability.logs.formatter",
    "log_format": ...}`."""
    kind, color = chosen_format(log_format, stream if stream is not None else sys.stderr)
    return TextFormatter(color) if kind == "text" else JsonFormatter()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def _jsonable(value: object) -> object:
    if isinstance(value, uuid.UUID | datetime):
        return str(value)
    return repr(value)


# One encoder for every line (json.dumps with options builds a new one per call);
# encode() keeps no state between calls, so threads can share it.
_ENCODER = json.JSONEncoder(default=_jsonable, ensure_ascii=False)


def configure(*, replace_handlers: bool = True) -> None:
    """At a process's entry point, at LOG_LEVEL (INFO by default; DEBUG adds the web's
    lines for status polls), in LOG_FORMAT (unset: text at a terminal, else JSON).
    replace_handlers=False leaves a root logger that already has handlers alone (as
    logging.basicConfig does)."""
    root = logging.getLogger()
    if root.handlers and not replace_handlers:
        return
    level = _level_setting("LOG_LEVEL", os.environ.get("LOG_LEVEL", "INFO"))
    handler = QueuedHandler()
    handler.setFormatter(formatter(os.environ.get("LOG_FORMAT"), sys.stderr))
    replaced, root.handlers[:] = root.handlers[:], [handler]
    for old in replaced:  # its listener thread writes what it holds, then ends
        old.close()
    root.setLevel(level)
    # procrastinate writes two lines per job (started, ended) that our own job.started /
    # job.finished events already say, with more, and one per periodic task deferred (the
    # reaper's, every REAPER_INTERVAL_S): its warnings and errors stay.
    logging.getLogger("procrastinate").setLevel(
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
            # The parent's unwritten lines are the parent's: dropped here. A listener that
            # survived the fork (gevent's is a greenlet, which does, where a thread does
            # not) would write them a second time; emptied, its queue gets nothing more
            # (ending it would make threading complain of a thread it no longer knows).
            inherited = cast("queue.SimpleQueue[logging.LogRecord]", self.queue)
            with contextlib.suppress(queue.Empty):
                while True:
                    inherited.get_nowait()
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
