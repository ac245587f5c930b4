"""`make run` (ops/run_dev.py) at a terminal: short coloured text lines from gunicorn, the
app and the worker alike, the banner after every boot line (nothing comes between it and
Ctrl-C), and the ops token it shows kept in var/ops-token. Run under a pseudo-terminal, as
a person would, against the test database; stopped with SIGINT."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from queue_jobs.observability.logs import WEB_WORKER_READY
from tests.integration.conftest import PROJECT_DIR, TEST_JWT_SECRET
from tests.integration.support import free_port, wait_until
from webapp.config import DEV_OPS_TOKEN_FILE

COLOUR = re.compile(r"\x1b\[[0-9;]*m")
TEXT_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: ")


class Terminal:
    """A process on a pseudo-terminal, its output gathered by a thread."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self._master, slave = pty.openpty()
        self.process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env,
                                        stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
        os.close(slave)
        self._output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while self._master >= 0:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # every writer has closed its end
                return
            if not chunk:
                return
            self._output += chunk

    @property
    def text(self) -> str:
        return bytes(self._output).decode(errors="replace").replace("\r\n", "\n")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=10)
        if self._master >= 0:
            os.close(self._master)
            self._master = -1


@pytest.fixture
def make_run(db_url: str) -> Iterator[Terminal]:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("WORKER_", "PROMETHEUS_", "OPS_", "LOG_", "NO_COLOR"))}
    environment.update({
        "DATABASE_URL": db_url, "PORT": str(free_port()),
        "WORKER_METRICS_PORT": str(free_port()), "LLM_PROVIDER": "offline",
        "JWT_SECRET_KEY": TEST_JWT_SECRET, "WEB_CONCURRENCY": "2", "TERM": "xterm"})
    terminal = Terminal([sys.executable, "ops/run_dev.py"], environment)
    yield terminal
    terminal.stop()


def test_at_a_terminal_text_lines_then_the_banner_last(make_run: Terminal) -> None:
    wait_until(lambda: "worker health at" in make_run.text, timeout=120, interval=0.2,
               message="make run's banner")
    make_run.stop()
    assert make_run.process.returncode == 0
    screen = make_run.text
    plain = COLOUR.sub("", screen)
    lines = plain.splitlines()

    # Coloured text, JSON nowhere: gunicorn's lines, the app's and the worker's alike.
    assert "\x1b[32mINFO\x1b[0m" in screen
    assert not [line for line in lines if line.startswith("{")]
    logged = [line for line in lines if TEXT_LINE.match(line)]
    for said in ("gunicorn: Starting gunicorn", "gunicorn: Listening at",
                 "worker: launching a worker", "request: GET /readyz 200 "):
        assert any(said in line for line in logged), (said, plain)

    # Every boot line before the banner, and nothing between it and Ctrl-C.
    banner = lines.index(next(line for line in lines if "API ready at" in line))
    stopping = lines.index("stopping ...")
    boot = [n for n, line in enumerate(lines) if "Booting worker" in line
            or WEB_WORKER_READY in line or "Listening at" in line]
    assert len([n for n in boot if WEB_WORKER_READY in lines[n]]) == 2
    assert max(boot) < banner, plain
    between = [line for line in lines[banner:stopping] if line.strip()]
    assert [line.split(" at ")[0].strip() for line in between] == [
        "API ready", "API docs", "demo page", "ops page", "worker health"], plain

    # The ops token in the fragment is the one kept under var/ for the next start.
    shown = re.search(r"/ops#token=(\S+)", plain)
    assert shown is not None
    assert shown.group(1) == DEV_OPS_TOKEN_FILE.read_text().strip()
    assert not Path(PROJECT_DIR / "var" / "ops-token").stat().st_mode & 0o077
