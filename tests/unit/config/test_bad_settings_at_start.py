"""A process started with a bad setting stops at once, before any database is needed, with
one line on stderr naming the variable and its value: no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def _start(command: list[str], **settings: str) -> subprocess.CompletedProcess[str]:
    # No DATABASE_URL and a bad setting: a start that got past its settings would try to
    # connect (and hang on retries or fail differently), not print the line asserted.
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")}
    environment.update({"JWT_SECRET_KEY": "unit-test-secret", **settings})
    return subprocess.run(command, cwd=PROJECT, env=environment, capture_output=True,
                          text=True, timeout=30)


def _assert_one_line(result: subprocess.CompletedProcess[str], program: str,
                     line: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"{program}: {line}"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [[sys.executable, "-m", "queue_jobs.worker"],
                                     [str(BIN / "jobs-worker")]])
def test_the_worker_names_a_bad_setting(command: list[str]) -> None:
    result = _start(command, WORKER_CONCURRENCY="abc")
    _assert_one_line(result, "jobs-worker", "WORKER_CONCURRENCY: Not a valid integer ('abc')")


def test_the_worker_names_a_bad_log_level() -> None:
    result = _start([sys.executable, "-m", "queue_jobs.worker"],
                    PROCRASTINATE_LOG_LEVEL="chatty")
    _assert_one_line(result, "jobs-worker", "PROCRASTINATE_LOG_LEVEL: no level 'CHATTY'")


def test_the_api_names_a_bad_setting() -> None:
    # gunicorn itself reads WEB_CONCURRENCY with int() as it is imported: jobs-web first.
    result = _start([str(BIN / "jobs-web")], WEB_CONCURRENCY="abc")
    _assert_one_line(result, "jobs-web", "WEB_CONCURRENCY: Not a valid integer ('abc')")


def test_gunicorn_with_the_shipped_conf_names_a_bad_setting() -> None:
    # The queue side's settings, which the API's processes read too, are checked there.
    result = _start([str(BIN / "gunicorn"), "-c", "webapp/gunicorn_conf.py", "wsgi:app"],
                    LLM_TIMEOUT_S="soon")
    _assert_one_line(result, "jobs-web", "LLM_TIMEOUT_S: Not a valid number ('soon')")


@pytest.mark.parametrize("name", ["JWT_SECRET_KEY", "OPS_TOKEN"])
def test_production_names_a_short_secret(name: str) -> None:
    # Read by gunicorn's master as it starts, before any worker or database.
    result = _start([str(BIN / "jobs-web")], APP_ENV="production",
                    **{"JWT_SECRET_KEY": "s" * 32, name: "tiny"})
    _assert_one_line(result, "jobs-web",
                     f"{name}: must be at least 32 characters when APP_ENV=production")
