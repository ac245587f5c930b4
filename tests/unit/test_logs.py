"""The JSON line's timestamp, built from a cached second, reads as datetime would write it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from queue_jobs.logs import JsonFormatter


@pytest.mark.parametrize("created", [
    1_764_201_599.001, 1_764_201_599.5, 1_764_201_599.9994, 1_764_201_600.0,
    1_764_201_600.0421, 1_764_201_599.25, 0.0, 1_764_201_600.999])
def test_the_timestamp_is_the_records_time_in_utc_to_the_millisecond(created: float) -> None:
    formatter = JsonFormatter()
    formatter.format(_record(created - 1))  # a cached second that must not be reused
    assert formatter._timestamp(created) == datetime.fromtimestamp(created, UTC).isoformat(
        timespec="milliseconds")


def _record(created: float) -> logging.LogRecord:
    record = logging.LogRecord("test", logging.INFO, "", 0, "line", (), None)
    record.created = created
    return record
