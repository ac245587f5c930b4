"""The load generators and processes the benchmarks drive: Debian's wrk (throughput), hey
(a fixed request rate) and pgbench, each run as a subprocess and its report parsed; the
services under test as subprocesses that are waited for and stopped cleanly."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

PROJECT_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TOOLS = ("wrk", "hey", "redis-server", "node", "npm")  # make deps


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def pgbench_binary() -> str:
    """The pgbench of the embedded PostgreSQL's own wheel (the same server version)."""
    import pgserver  # the embedded server's package: benchmarks only

    shipped = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
    return str(shipped) if shipped.exists() else "pgbench"


@dataclass(frozen=True)
class Load:
    """What one load run measured."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx answers and socket errors
    total: int = 0  # requests answered


_WRK_LUA = """
local thread_count = 0
function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
end
local sent = 0
function request()
  sent = sent + 1
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  if fresh_session then
    -- a new anonymous owner per request: many users, as in production (one owner's
    -- creates are serialised on purpose)
    headers["x-session-id"] = string.format("bench_%d_%d_%d", tid, sent, math.random(1e9))
  end
  return wrk.format(nil, nil, headers, nil)
end
"""


def wrk(url: str, *, seconds: float, connections: int, method: str = "GET",
        headers: Mapping[str, str] | None = None, body: str | None = None,
        fresh_session: bool = False, timeout_s: float = 5, workdir: Path) -> Load:
    """timeout_s: an answer slower than this is a failed request (5 s: one answer past
    wrk's default of 2 s on a busy host failed a whole run)."""
    lines = [f'wrk.method = "{method}"']
    for name, value in (headers or {}).items():
        lines.append(f'wrk.headers["{name}"] = [[{value}]]')
    if body is not None:
        lines.append(f"wrk.body = [[{body}]]")
    lines.append(f"fresh_session = {'true' if fresh_session else 'false'}")
    script = workdir / "wrk.lua"
    script.write_text("\n".join(lines) + _WRK_LUA)
    return _wrk_load(url, script, seconds=seconds, connections=connections,
                     timeout_s=timeout_s)


_WRK_CYCLE_LUA = """
local count = #paths
local next_one = 0
function setup(thread)
  thread:set("offset", math.random(count))
end
function request()
  next_one = next_one + 1
  local i = (next_one + offset) % count + 1
  return wrk.format("GET", paths[i], headers[i], nil)
end
"""


def wrk_cycle(url: str, paths: list[str], headers: Sequence[Mapping[str, str]], *,
              seconds: float, connections: int, workdir: Path, timeout_s: float = 5) -> Load:
    """GET requests cycling through `paths`, each with its own headers."""
    def lua_table(items: list[str]) -> str:
        return "{" + ", ".join(items) + "}"

    lines = ["paths = " + lua_table([f"[[{path}]]" for path in paths]),
             "headers = " + lua_table([
                 lua_table([f'["{name}"] = [[{value}]]' for name, value in entry.items()])
                 for entry in headers])]
    script = workdir / "wrk-cycle.lua"
    script.write_text("\n".join(lines) + _WRK_CYCLE_LUA)
    return _wrk_load(url, script, seconds=seconds, connections=connections,
                     timeout_s=timeout_s)


def _wrk_load(url: str, script: Path, *, seconds: float, connections: int,
              timeout_s: float) -> Load:
    threads = min(2, connections)
    out = _run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                f"--timeout={timeout_s:g}s", "--latency", "-s", str(script), url])
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return _checked(url, Load(requests_per_s=float(_find(r"Requests/sec:\s+([\d.]+)", out)),
                              p50_ms=_wrk_ms(_find(r"\n\s+50%\s+(\S+)", out)),
                              p99_ms=_wrk_ms(_find(r"\n\s+99%\s+(\S+)", out)),
                              errors=errors,
                              total=int(_find(r"(\d+) requests in", out))))


def hey(url: str, *, seconds: float, rate: float, connections: int, groups: int,
        headers: Mapping[str, str] | None = None) -> Load:
    """`rate` requests per second in total from `connections` clients, each sending at
    an even pace, out of step with one another. hey starts all its workers' tickers at
    once, so on its own its clients fire together: a burst of `connections` requests
    every tick, which no set of independent pollers sends. So `groups` hey processes run,
    each with connections/groups clients, started a fraction of a tick apart, and the
    latencies of all their requests are merged."""
    per_client = rate / connections
    tick_s = 1 / per_client
    command = ["hey", "-z", f"{max(1, round(seconds))}s", "-c", str(connections // groups),
               "-q", f"{per_client:g}", "-t", "10", "-o", "csv"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    children = []
    for _ in range(groups):
        children.append(subprocess.Popen([*command, url], stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
        time.sleep(tick_s / groups)
    latencies: list[float] = []
    errors = 0
    for child in children:
        out, err = child.communicate(timeout=seconds + 60)
        if child.returncode != 0:
            raise RuntimeError(f"hey failed ({child.returncode}): {err[-2000:]}")
        rows = list(csv.DictReader(io.StringIO(out)))
        latencies += [float(row["response-time"]) * 1000 for row in rows]
        errors += sum(not row["status-code"].startswith(("2", "3")) for row in rows)
    if not latencies:
        raise RuntimeError(f"{url}: hey answered no requests")
    latencies.sort()
    return _checked(url, Load(requests_per_s=len(latencies) / seconds,
                              p50_ms=latencies[len(latencies) // 2],
                              p99_ms=latencies[min(len(latencies) - 1,
                                                   int(len(latencies) * 0.99))],
                              errors=errors))


def _checked(url: str, load: Load) -> Load:
    """A run with failed answers measured something else than asked: stop there."""
    if load.errors:
        raise RuntimeError(f"{url}: {load.errors} requests failed under load")
    return load


def pgbench(conninfo: str, script: Path, *, seconds: float, clients: int) -> float:
    """Transactions per second of `script` (one job's life cycle per transaction)."""
    out = _run([pgbench_binary(), "-n", "-f", str(script), "-c", str(clients), "-j", "2",
                "-T", str(max(1, round(seconds))), conninfo])
    return float(_find(r"tps = ([\d.]+)", out))


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"no {pattern!r} in:\n{text[-3000:]}")
    return match.group(1)


def _wrk_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


# --- processes ----------------------------------------------------------------------------


@contextmanager
def process(command: list[str], env: Mapping[str, str], *, ready_url: str | None = None,
            log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A service for the length of the block: started, waited for (its URL answering 200),
    then stopped with SIGTERM (SIGKILL after 20 s)."""
    with log.open("ab") as sink:
        child = subprocess.Popen(command, cwd=PROJECT_DIR, env=dict(env), stdout=sink,
                                 stderr=sink)
    try:
        if ready_url:
            wait_for(ready_url, child, log)
        yield child
    finally:
        stop(child)


def process_once(command: list[str], env: Mapping[str, str]) -> None:
    """A command run to its end (raises with its output if it fails)."""
    done = subprocess.run(command, cwd=PROJECT_DIR, env=dict(env), capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed: {done.stderr[-2000:]}")


def stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def wait_for(url: str, child: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"{url}: the process exited; see {log}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:g} s; see {log}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of one process (VmRSS), in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(_find(r"VmRSS:\s+(\d+) kB", status)) / 1024


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def environment(**changes: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("PROMETHEUS_MULTIPROC_DIR", "DATABASE_URL")}
    env.update(changes)
    return env


# --- what a side of the head-to-head spends: CPU time and memory of its processes ----------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants, alive now."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue  # exited meanwhile
    return found


def cpu_seconds(roots: list[int]) -> float:
    """User + system CPU time of these processes and their descendants, including
    descendants that exited and were waited for (a PostgreSQL backend that ended)."""
    total = 0
    for root in roots:
        for pid in process_tree(root):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            # utime, stime, cutime, cstime: fields 14-17 of proc(5), 12-15 after the name
            total += sum(int(value) for value in fields[11:15])
    return total / CLOCK_TICKS


def pss_mb(roots: list[int]) -> float:
    """Proportional set size of these processes and their descendants, in MiB: shared pages
    (a forked worker's, PostgreSQL's shared buffers) counted once across them."""
    total = 0
    for root in roots:
        for pid in process_tree(root):
            try:
                text = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except FileNotFoundError:
                continue
            total += int(_find(r"\nPss:\s+(\d+) kB", text))
    return total / 1024


def process_count(roots: list[int]) -> int:
    return sum(len(process_tree(root)) for root in roots)


@contextmanager
def redis_server(workdir: Path, name: str, *, durable: bool) -> Iterator[tuple[str, int]]:
    """Debian's redis-server on a free port, for the length of the block: its URL and pid.
    durable: every write fsynced before it is answered (appendonly, appendfsync always);
    otherwise Redis's own defaults (snapshots now and then, no append-only file)."""
    port = free_port()
    data = workdir / name
    data.mkdir(exist_ok=True)
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
               "--daemonize", "no", "--logfile", ""]
    if durable:
        command += ["--appendonly", "yes", "--appendfsync", "always"]
    with (workdir / f"{name}.log").open("ab") as sink:
        child = subprocess.Popen(command, stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; see {workdir / name}.log")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}", child.pid
    finally:
        stop(child)
