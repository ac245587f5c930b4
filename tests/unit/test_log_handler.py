"""queue_jobs.observability.log_handler: queued lines arrive whole, in order, with the
caller's context, and none is lost or written twice on exit or across a fork."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from queue_jobs.observability.log_handler import QueuedStreamHandler
from queue_jobs.observability.logs import REQUEST_ID, JsonFormatter

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[TextIO]:
    with (tmp_path / "log").open("w") as stream:
        yield stream


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(f"test_log_handler.{name}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def _lines(stream: TextIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in Path(stream.name).read_text().splitlines()]


def test_lines_from_many_threads_arrive_whole_in_order_with_their_request_id(
        sink: TextIO) -> None:
    handler = QueuedStreamHandler(sink)
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
    handler.flush()

    lines = _lines(sink)
    assert len(lines) == 8 * 500
    for t in range(8):
        mine = [line for line in lines if line["caller"] == t]
        assert [line["n"] for line in mine] == list(range(500))
        assert {line["requestId"] for line in mine} == {f"req-{t}"}


def test_a_stream_that_fails_once_loses_that_batch_only(sink: TextIO,
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

    handler = QueuedStreamHandler(FailsOnce())  # type: ignore[arg-type]
    logger = _logger(handler, "fails")
    logger.info("lost")
    handler.flush()
    logger.info("kept")
    handler.flush()
    assert Path(sink.name).read_text() == "kept\n"
    assert "disk full" in capsys.readouterr().err  # said, as StreamHandler says it


def test_every_line_is_written_when_the_process_exits() -> None:
    program = (
        "import logging, sys\n"
        "from queue_jobs.observability import logs\n"
        "logs.configure()\n"
        "for n in range(3000):\n"
        "    logging.getLogger('exit').info('line %d', n)\n"
        "sys.exit(0)\n")
    done = subprocess.run([sys.executable, "-c", program], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=60, check=True)
    messages = [json.loads(line)["msg"] for line in done.stderr.splitlines()]
    assert messages == [f"line {n}" for n in range(3000)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_writes_its_own_lines_and_not_its_parents(sink: TextIO) -> None:
    handler = QueuedStreamHandler(sink)
    logger = _logger(handler, "fork")
    logger.info("parent started")  # the parent's writer runs, and waits to batch
    for n in range(100):
        logger.info("parent %d", n)  # queued, most not yet written when the child forks
    child = os.fork()
    if child == 0:  # the child: log, flush, leave without running the parent's cleanup
        try:
            logger.info("child")
            handler.flush()
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    handler.flush()
    written = Path(sink.name).read_text().splitlines()
    assert sorted(written) == sorted(["parent started", "child",
                                      *(f"parent {n}" for n in range(100))])


def test_the_writer_survives_a_stream_whose_error_report_fails_too(
        sink: TextIO, monkeypatch: pytest.MonkeyPatch) -> None:
    class Closed:
        def write(self, text: str) -> None:
            raise ValueError("I/O operation on closed file")

        def flush(self) -> None:
            pass

    handler = QueuedStreamHandler(Closed())  # type: ignore[arg-type]
    logger = _logger(handler, "closed")

    def report_fails(record: logging.LogRecord) -> None:
        raise ValueError("stderr is closed as well")

    monkeypatch.setattr(handler, "handleError", report_fails)
    logger.info("lost")
    handler.flush()
    handler.setStream(sink)
    logger.info("kept")
    handler.flush()
    assert Path(sink.name).read_text() == "kept\n"


def test_close_writes_what_is_queued_and_ends_the_writer(sink: TextIO) -> None:
    handler = QueuedStreamHandler(sink)
    logger = _logger(handler, "close")
    logger.info("last words")
    writer = handler._writer
    assert writer is not None and writer.is_alive()
    handler.close()
    writer.join(timeout=5)
    assert not writer.is_alive()
    assert Path(sink.name).read_text() == "last words\n"


def test_a_stuck_stream_holds_callers_back_instead_of_queueing_without_end(
        sink: TextIO, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("queue_jobs.observability.log_handler.MAX_PENDING", 5)
    unstuck = threading.Event()

    class Stuck:
        def write(self, text: str) -> None:
            unstuck.wait(10)
            sink.write(text)

        def flush(self) -> None:
            sink.flush()

    handler = QueuedStreamHandler(Stuck())  # type: ignore[arg-type]
    logger = _logger(handler, "stuck")
    def log_fifty() -> None:
        for n in range(50):
            logger.info("n %d", n)

    caller = threading.Thread(target=log_fifty)
    caller.start()
    caller.join(timeout=1)
    assert caller.is_alive()  # waiting for the writer, not piling up 50 lines
    assert handler._pending.qsize() <= 2 * 5
    unstuck.set()
    caller.join(timeout=10)
    handler.flush()
    assert Path(sink.name).read_text().splitlines() == [f"n {n}" for n in range(50)]
