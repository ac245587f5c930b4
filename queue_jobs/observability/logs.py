"""Logs as JSON lines: one object per line, for `journalctl -o cat | jq` and any log
shipper. LOG_FORMAT=text gives the plain format for people at a terminal.

Events carry their fields as `extra` (`log.info("job.finished", extra=fields(...))`); the
formatter writes every extra field, plus `requestId` when the line is written while a web
request is handled (webapp sets it), so a request's job events join its request line.
Never put a session id, a token, a password or an API key in a field: owner kinds only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from queue_jobs.env_reader import SettingsError
from queue_jobs.observability.log_handler import QueuedStreamHandler

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


# One encoder for every line (json.dumps with options builds a new one per call, a tenth
# of the formatting); encode() keeps no state between calls, so threads can share it.
_ENCODER = json.JSONEncoder(default=_jsonable, ensure_ascii=False)


def configure(level: int = logging.INFO, *, replace_handlers: bool = True) -> None:
    """At a process's entry point. replace_handlers=False leaves a root logger that
    already has handlers alone (as logging.basicConfig does)."""
    root = logging.getLogger()
    if root.handlers and not replace_handlers:
        return
    handler = QueuedStreamHandler()
    if os.environ.get("LOG_FORMAT", "json") == "text":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler]
    root.setLevel(level)
    # procrastinate's worker writes two lines per job (started, ended) that our own
    # job.started / job.finished events already say, with more: its warnings and errors
    # stay. (Measured: logging was an eighth of a worker's time per job.)
    procrastinate_level = os.environ.get("PROCRASTINATE_LOG_LEVEL", "WARNING").upper()
    if not isinstance(logging.getLevelName(procrastinate_level), int):
        raise SettingsError(f"PROCRASTINATE_LOG_LEVEL: no level {procrastinate_level!r}")
    logging.getLogger("procrastinate.worker").setLevel(procrastinate_level)


def event(logger: logging.Logger, name: str, **fields: Any) -> None:
    """One event line: `name` is the message (job.created, step.finished, request, ...).

    As logger.info(name, extra=...), without its search of the stack for the caller's
    file and line, which no line of ours shows: a worker writes several events a job and a
    web process one a request, and that search was a fifth of each line's cost
    (bench/results.md)."""
    if logger.isEnabledFor(logging.INFO):
        logger.handle(logger.makeRecord(logger.name, logging.INFO, "(event)", 0, name, (),
                                        None, extra={"event": name, **fields}))
