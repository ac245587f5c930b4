"""queue_jobs.observability.logs.QueuedHandler: a caller never waits for the stream; lines
arrive whole, in order, with the caller's context, and none is lost or written twice on
exit or across a fork."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from queue_jobs.observability.logs import REQUEST_ID, JsonFormatter, QueuedHandler

PROJECT_DIR = Path(__file__).resolve().parents[3]


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[TextIO]:
    with (tmp_path / "log").open("w") as stream:
        yield stream


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(f"test_logs_queued.{name}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def _lines(stream: TextIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in Path(stream.name).read_text().splitlines()]


def _run(program: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", program], cwd=PROJECT_DIR,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60, check=True)


def test_lines_from_many_threads_arrive_whole_in_order_with_their_request_id(
        sink: TextIO) -> None:
    handler = QueuedHandler(sink)
    handler.setFormatter(JsonFormatter())
    logger = _logger(handler, "threads")

    def request(thread: int) -> None:
        REQUEST_ID.set(f"req-{thread}")  # a thread's own context, as in a request
        for n in range(500):
            logger.info("line", extra={"caller": thread, "n": n})

    threads = [threading.Thread(target=request, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handler.close()

    lines = _lines(sink)
    assert len(lines) == 8 * 500
    for t in range(8):
        mine = [line for line in lines if line["caller"] == t]
        assert [line["n"] for line in mine] == list(range(500))
        assert {line["requestId"] for line in mine} == {f"req-{t}"}


def test_a_caller_never_waits_for_a_stuck_stream(sink: TextIO) -> None:
    unstuck = threading.Event()

    class Stuck:
        def write(self, text: str) -> None:
            unstuck.wait(10)
            sink.write(text)

        def flush(self) -> None:
            sink.flush()

    handler = QueuedHandler(Stuck())  # type: ignore[arg-type]
    logger = _logger(handler, "stuck")

    def log_fifty() -> None:
        for n in range(50):
            logger.info("n %d", n)

    caller = threading.Thread(target=log_fifty)
    caller.start()
    caller.join(timeout=5)
    assert not caller.is_alive()  # done while the stream is still stuck
    unstuck.set()
    handler.close()
    assert Path(sink.name).read_text().splitlines() == [f"n {n}" for n in range(50)]


def test_a_stream_that_fails_once_loses_that_line_only(sink: TextIO,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    class FailsOnce:
        failed = False

        def write(self, text: str) -> None:
            if not self.failed:
                self.failed = True
                raise OSError("disk full")
            sink.write(text)

        def flush(self) -> None:
            sink.flush()

    handler = QueuedHandler(FailsOnce())  # type: ignore[arg-type]
    logger = _logger(handler, "fails")
    logger.info("lost")
    logger.info("kept")
    handler.close()
    assert Path(sink.name).read_text() == "kept\n"
    assert "disk full" in capsys.readouterr().err  # said, as StreamHandler says it


def test_the_listener_survives_a_stream_whose_error_report_fails_too(
        sink: TextIO, monkeypatch: pytest.MonkeyPatch) -> None:
    class Closed:
        def write(self, text: str) -> None:
            raise ValueError("I/O operation on closed file")

        def flush(self) -> None:
            pass

    handler = QueuedHandler(Closed())  # type: ignore[arg-type]
    logger = _logger(handler, "closed")
    reported = threading.Event()

    def report_fails(record: logging.LogRecord) -> None:
        reported.set()
        raise ValueError("stderr is closed as well")

    monkeypatch.setattr(handler.writer, "handleError", report_fails)
    logger.info("lost")
    assert reported.wait(5)
    handler.writer.setStream(sink)
    logger.info("kept")
    handler.close()
    assert Path(sink.name).read_text() == "kept\n"


def test_close_writes_what_is_queued_and_ends_the_listener(sink: TextIO) -> None:
    before = set(threading.enumerate())
    handler = QueuedHandler(sink)
    logger = _logger(handler, "close")
    logger.info("last words")
    assert set(threading.enumerate()) - before  # the listener
    handler.close()
    assert set(threading.enumerate()) - before == set()
    assert Path(sink.name).read_text() == "last words\n"


def test_every_line_is_written_when_the_process_exits() -> None:
    program = (
        "import logging, sys\n"
        "from queue_jobs.observability import logs\n"
        "logs.configure()\n"
        "for n in range(3000):\n"
        "    logging.getLogger('exit').info('line %d', n)\n"
        "sys.exit(0)\n")
    messages = [json.loads(line)["msg"] for line in _run(program).stderr.splitlines()]
    assert messages == [f"line {n}" for n in range(3000)]


def test_text_lines_are_written_once_with_their_traceback() -> None:
    program = (
        "import logging\n"
        "from queue_jobs.observability import logs\n"
        "logs.configure()\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    logging.getLogger('text').exception('failed %s', 'here')\n"
        "logging.getLogger('text').info('after')\n")
    lines = _run(program, LOG_FORMAT="text").stderr.splitlines()
    assert lines[0].endswith(" ERROR text: failed here")
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-2] == "ZeroDivisionError: division by zero"
    assert lines[-1].endswith(" INFO text: after")
    assert sum("ZeroDivisionError" in line for line in lines) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_writes_its_own_lines_and_not_its_parents(sink: TextIO) -> None:
    handler = QueuedHandler(sink)
    logger = _logger(handler, "fork")
    logger.info("parent started")
    for n in range(100):
        logger.info("parent %d", n)  # queued, most not yet written when the child forks
    _fork_a_child_that_logs(logger, handler)
    written = Path(sink.name).read_text().splitlines()
    assert sorted(written) == sorted(["parent started", "child",
                                      *(f"parent {n}" for n in range(100))])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_fork_waits_for_a_write_under_way(sink: TextIO) -> None:
    writing = threading.Event()

    class Slow:  # the line sits in sink's buffer until flush: a child forked now has it too
        def write(self, text: str) -> None:
            sink.write(text)
            writing.set()
            time.sleep(0.3)

        def flush(self) -> None:
            sink.flush()

    handler = QueuedHandler(Slow())  # type: ignore[arg-type]
    logger = _logger(handler, "fork-mid-write")
    logger.info("parent")
    assert writing.wait(5)
    _fork_a_child_that_logs(logger, handler)
    assert sorted(Path(sink.name).read_text().splitlines()) == ["child", "parent"]


def _fork_a_child_that_logs(logger: logging.Logger, handler: QueuedHandler) -> None:
    """The child logs "child" and leaves without the parent's cleanup; once it is gone the
    parent closes its handler, so each has written all it had."""
    child = os.fork()
    if child == 0:
        try:
            logger.info("child")
            handler.close()
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    handler.close()
