"""The event-stream load client of the benchmarks: one process holding thousands of open
`GET /api/v1/jobs/:id/events` streams over plain asyncio sockets, recording when each
event arrives (time.monotonic(), one clock for every process of the host).

    python -m bench.stream_client --url http://127.0.0.1:8000 --session S --streams 5000 JOB...

Stream i follows JOB number i mod len(JOB...). It prints `open <n>` once every stream has
had its first event (the current document), then answers commands read on stdin, one line
each: `events` prints a JSON line {"events": [[stream, jobId, progress, t], ...],
"keepalives": n, "open": n} of the events since the last `events` (first documents left
out); `quit` (or the end of stdin) closes every stream and exits. bench/run.py drives it
through StreamClient below.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import queue
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

OPENING_AT_ONCE = 20  # streams being opened together (each reads its job: pool of 8)
FIRST_EVENT_TIMEOUT_S = 60.0


@dataclass
class _Tally:
    events: list[tuple[int, float, bytes]] = field(default_factory=list)  # (stream, t, data)
    keepalives: int = 0
    open: int = 0


class _Failed(Exception):
    pass


async def _follow(index: int, host: str, port: int, path: str, session: str, tally: _Tally,
                  opening: asyncio.Semaphore, first: asyncio.Future[None]) -> None:
    """One stream: the request, then every SSE event of its chunked body, timestamped as
    its last byte arrives."""
    async with opening:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nx-session-id: {session}"
                     f"\r\nAccept: text/event-stream\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200") or b"chunked" not in head.lower():
            body = await asyncio.wait_for(reader.read(500), 5)
            first.set_exception(_Failed(f"stream {index}: {head.splitlines()[0]!r} {body!r}"))
            writer.close()
            return
    tally.open += 1
    buffer = b""
    seen_first = False
    try:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                return  # the server ended the stream
            buffer += (await reader.readexactly(size + 2))[:-2]
            now = time.monotonic()
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                if event.startswith(b":"):
                    tally.keepalives += 1
                    continue
                if not seen_first:
                    seen_first = True
                    if not first.done():
                        first.set_result(None)
                    continue
                data = next(line[6:] for line in event.split(b"\n") if line.startswith(b"data: "))
                tally.events.append((index, now, data))
    finally:
        tally.open -= 1
        writer.close()


def _fails(first: asyncio.Future[None]) -> Callable[[asyncio.Task[None]], None]:
    """A stream that ended before its first event fails the run at once."""
    def done(task: asyncio.Task[None]) -> None:
        if not first.done():
            error = None if task.cancelled() else task.exception()
            first.set_exception(_Failed(repr(error) if error else "ended early"))
    return done


def _report(tally: _Tally) -> str:
    events, tally.events = tally.events, []
    rows = []
    for index, at, data in events:
        document = json.loads(data)
        rows.append([index, document["jobId"], document["progress"], at])
    return json.dumps({"events": rows, "keepalives": tally.keepalives, "open": tally.open})


async def _main(url: str, session: str, streams: int, jobs: Sequence[str]) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < streams + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, streams + 1000), hard))
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    tally = _Tally()
    opening = asyncio.Semaphore(OPENING_AT_ONCE)
    loop = asyncio.get_running_loop()
    firsts = [loop.create_future() for _ in range(streams)]
    tasks = [asyncio.create_task(_follow(
        i, host, port, f"/api/v1/jobs/{jobs[i % len(jobs)]}/events", session, tally, opening,
        firsts[i])) for i in range(streams)]
    for task, first in zip(tasks, firsts, strict=True):
        task.add_done_callback(_fails(first))
    await asyncio.wait_for(asyncio.gather(*firsts), FIRST_EVENT_TIMEOUT_S)
    print(f"open {tally.open}", flush=True)
    while True:
        command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if command == "events":
            print(_report(tally), flush=True)
        else:
            break
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--streams", type=int, required=True)
    parser.add_argument("jobs", nargs="+")
    args = parser.parse_args()
    asyncio.run(_main(args.url, args.session, args.streams, args.jobs))
    return 0


class StreamClient:
    """bench/run.py's side: the client process, its `open` line waited for."""

    def __init__(self, url: str, session: str, streams: int, jobs: Sequence[str],
                 timeout: float = FIRST_EVENT_TIMEOUT_S + 30) -> None:
        self._child = subprocess.Popen(
            [sys.executable, "-m", "bench.stream_client", "--url", url, "--session", session,
             "--streams", str(streams), *jobs],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        line = self._line(timeout)
        if line != f"open {streams}":
            raise RuntimeError(f"stream client: {line!r}")

    def _read(self) -> None:
        assert self._child.stdout is not None
        for line in self._child.stdout:
            self._lines.put(line.strip())
        self._lines.put("")  # the client exited

    def _line(self, timeout: float) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"stream client: no answer within {timeout:g} s") from None
        if not line:
            raise RuntimeError(f"stream client exited ({self._child.wait()})")
        return line

    def events(self) -> dict[str, Any]:
        """The events since the last call, and the client's counts."""
        assert self._child.stdin is not None
        self._child.stdin.write("events\n")
        self._child.stdin.flush()
        return dict(json.loads(self._line(30)))

    def close(self) -> None:
        if self._child.poll() is None:
            assert self._child.stdin is not None
            try:
                self._child.stdin.write("quit\n")
                self._child.stdin.close()
                self._child.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self._child.kill()
                self._child.wait()


if __name__ == "__main__":
    sys.exit(main())
