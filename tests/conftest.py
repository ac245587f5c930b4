"""Shared test setup. Unit tests need nothing; integration fixtures live in integration/.

Here only the order of a parallel run (pytest -n): the longest tests start first, and each
xdist worker is handed one test at a time, so no long test starts while the other workers
are running out of work."""

from __future__ import annotations

import pytest

# Tests that take tens of seconds, by node id prefix: the benchmarks' smoke run and the
# fuzzing of the API; then everything marked slow (crashes, outages, timeouts).
LONGEST = ("tests/integration/test_bench_smoke",
           "tests/integration/test_openapi.py::test_every_answer_is_documented")


def _start_rank(item: pytest.Item) -> int:
    if item.nodeid.startswith(LONGEST):
        return 0
    return 1 if item.get_closest_marker("slow") else 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_start_rank)  # stable: otherwise the collection's order


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # xdist's load scheduling hands each worker a quarter of its share up front, then
    # chunks of what is left: the long tests sorted first would all land on one worker.
    # One at a time (it keeps two queued per worker), whoever is free takes the next.
    if config.pluginmanager.hasplugin("xdist") and config.getoption("maxschedchunk") is None:
        config.option.maxschedchunk = 1
