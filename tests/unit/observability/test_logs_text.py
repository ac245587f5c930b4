"""The text lines for people at a terminal: a request said in its own words, an event's
fields as key=value, colour only when asked; and which format a process writes (a terminal
or not, LOG_FORMAT, NO_COLOR)."""

from __future__ import annotations

import io
import logging
import re
import sys

import pytest

from queue_jobs.config.env_reader import SettingsError
from queue_jobs.observability import logs
from queue_jobs.observability.logs import JsonFormatter, TextFormatter, chosen_format

COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def _record(name: str, message: str, level: int = logging.INFO, **extra: object
            ) -> logging.LogRecord:
    logger = logging.getLogger(name)
    return logger.makeRecord(name, level, "(test)", 0, message, (), None, extra=extra)


def _event(name: str, event: str, level: int = logging.INFO, **fields: object
           ) -> logging.LogRecord:
    return _record(name, event, level, event=event, **fields)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_request_line_is_method_route_status_and_duration() -> None:
    record = _event("webapp.request", "request", method="GET",
                    route="/api/v1/jobs/<job_id>/status", status=404, durationMs=3.1,
                    ownerKind="session", errorCode="JOB_NOT_FOUND")
    line = TextFormatter().format(record)
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} INFO request: GET "
                        r"/api/v1/jobs/<job_id>/status 404 3\.1 ms JOB_NOT_FOUND", line), line
    answered = _event("webapp.request", "request", logging.DEBUG, method="POST",
                      route="/api/v1/jobs/website-analysis", status=201, durationMs=12.0,
                      ownerKind=None, errorCode=None)
    assert TextFormatter().format(answered).endswith(
        " DEBUG request: POST /api/v1/jobs/website-analysis 201 12.0 ms")


def test_an_event_shows_its_fields_and_other_extras_stay_in_json() -> None:
    event = _event("queue_jobs.worker.job_run", "job.finished", jobId="a1", type="website-analysis",
                   outcome="succeeded", durationMs=950, errorCode=None)
    assert TextFormatter().format(event).endswith(
        " INFO job_run: job.finished jobId=a1 type=website-analysis outcome=succeeded "
        "durationMs=950")
    # A library's extras (procrastinate's job dicts) are for machines.
    library = _record("procrastinate.periodic", "Periodic job deferred", action="deferred",
                      job={"id": 1, "task_kwargs": {}})
    assert TextFormatter().format(library).endswith(
        " INFO procrastinate: Periodic job deferred")
    assert '"job": {"id": 1' in JsonFormatter().format(library)


@pytest.mark.parametrize(("logger", "short"), [
    ("webapp.request", "request"), ("queue_jobs.worker", "worker"),
    ("queue_jobs.worker.reaper", "reaper"), ("gunicorn.error", "gunicorn"),
    ("procrastinate.worker", "procrastinate"), ("root", "root")])
def test_the_logger_is_named_short(logger: str, short: str) -> None:
    assert logs.short_name(logger) == short


def test_colour_only_when_asked() -> None:
    record = _event("webapp.request", "request", logging.WARNING, method="GET",
                    route="/readyz", status=503, durationMs=1.0, errorCode=None,
                    ownerKind=None)
    plain = TextFormatter(color=False).format(record)
    coloured = TextFormatter(color=True).format(record)
    assert not COLOUR.search(plain)
    assert "\x1b[33mWARNING\x1b[0m" in coloured  # the level's colour
    assert "\x1b[31m503\x1b[0m" in coloured  # a 5xx in red
    assert COLOUR.sub("", coloured) == plain


def test_a_traceback_follows_its_line() -> None:
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, "(test)", 0,
                                                   "failed", (), sys.exc_info())
    lines = TextFormatter().format(record).splitlines()
    assert lines[0].endswith(" ERROR x: failed")
    assert lines[-1] == "ZeroDivisionError: division by zero"


@pytest.mark.parametrize(("log_format", "terminal", "no_color", "expected"), [
    (None, True, "", ("text", True)),  # make run at a terminal
    (None, False, "", ("json", False)),  # systemd, a container, a pipe
    ("", False, "", ("json", False)),
    ("json", True, "", ("json", False)),
    ("text", False, "", ("text", False)),  # text, but no colour codes in a file
    ("TEXT", True, "", ("text", True)),
    (None, True, "1", ("text", False)),  # NO_COLOR
    ("text", True, "yes", ("text", False)),
])
def test_the_format_follows_the_terminal_unless_log_format_says(
        monkeypatch: pytest.MonkeyPatch, log_format: str | None, terminal: bool,
        no_color: str, expected: tuple[str, bool]) -> None:
    monkeypatch.setenv("NO_COLOR", no_color)
    stream = Terminal() if terminal else io.StringIO()
    assert chosen_format(log_format, stream) == expected
    chosen = logs.formatter(log_format, stream)
    assert isinstance(chosen, TextFormatter if expected[0] == "text" else JsonFormatter)
    if isinstance(chosen, TextFormatter):
        assert chosen.color is expected[1]


def test_an_unknown_log_format_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="LOG_FORMAT: 'xml' is not one of json, text"):
        chosen_format("xml", io.StringIO())
