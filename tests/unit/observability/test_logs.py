"""The JSON line's timestamp, built from a cached second, reads exactly as datetime would
write it; and events go through logging's levels and filters like any other line."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime

import pytest

from queue_jobs.observability import logs
from queue_jobs.observability.logs import JsonFormatter


def _as_datetime_writes_it(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


@pytest.mark.parametrize("created", [
    1_764_201_599.001, 1_764_201_599.5, 1_764_201_599.9994, 1_764_201_599.9999996,
    1_764_201_600.0, 1_764_201_600.0421, 1_734_234_785.1199994, 0.0, -1.25,
    -1_359_177_023.3470006])
def test_the_timestamp_is_the_records_time_in_utc_to_the_millisecond(created: float) -> None:
    formatter = JsonFormatter()
    formatter.format(_record(created - 1))  # a cached second that must not be reused
    assert formatter._timestamp(created) == _as_datetime_writes_it(created)


def test_the_cached_second_gives_the_same_text_as_a_fresh_one() -> None:
    chance = random.Random(6)
    formatter = JsonFormatter()
    now = 1_764_201_600.0
    for _ in range(50_000):  # mostly within the same second as the line before
        now += chance.choice((0.0, 0.0004, 0.0123, 0.3, 1.7))
        created = now + chance.random() * 1e-6
        assert formatter._timestamp(created) == _as_datetime_writes_it(created), created
    for _ in range(50_000):  # anywhere, before 1970 too
        created = chance.uniform(-2e9, 4e9)
        assert formatter._timestamp(created) == _as_datetime_writes_it(created), created


def test_an_event_is_subject_to_the_loggers_level_and_filters() -> None:
    logger = logging.getLogger("tests.events")
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep()
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.setLevel(logging.WARNING)
        logs.event(logger, "job.started", jobId="a")
        logger.setLevel(logging.INFO)
        logger.addFilter(lambda record: getattr(record, "jobId", None) != "b")
        logs.event(logger, "job.started", jobId="b")
        logs.event(logger, "job.started", jobId="c", attempt=2)
    finally:
        logger.removeHandler(handler)
        logger.filters.clear()
        logger.propagate = True
    assert [(r.getMessage(), vars(r)["event"], vars(r)["jobId"]) for r in seen] == [
        ("job.started", "job.started", "c")]
    assert vars(seen[0])["attempt"] == 2


def _record(created: float) -> logging.LogRecord:
    record = logging.LogRecord("test", logging.INFO, "", 0, "line", (), None)
    record.created = created
    return record
