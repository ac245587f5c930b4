"""`make run`: embedded PostgreSQL (unless DATABASE_URL), migrations, API and one worker.

At a terminal the children write short coloured text lines (they see a terminal: a
pseudo-terminal of ours), elsewhere JSON lines; LOG_FORMAT says which either way
(queue_jobs.observability.logs). Their lines pass through this process, one whole line at
a time, so the banner (the addresses, the ops page with its token in the fragment) comes
last: once the API answers /readyz, the worker is registered (its /healthz) and their
boot lines have stopped coming. The ops token is OPS_TOKEN, else one kept in var/ops-token
(made on the first start, mode 0600), so an open /ops tab survives a restart.

The API is `jobs-web` on PORT, the worker `jobs-worker`: the installed console scripts,
as in production. The worker answers /healthz and /metrics on WORKER_METRICS_PORT if set
(0: none), else on a free port chosen at start and printed: never a port derived from
PORT, which two instances side by side would both take. Ctrl-C stops everything it started.

Both children ride out a PostgreSQL restart or outage by themselves (the API answers 503
meanwhile, the worker waits and reconnects), so `make run` keeps running across one, with
an external DATABASE_URL or the embedded server alike. Should the worker exit anyway (an
error of another kind), it is started again, as systemd's Restart=always would, unless it
keeps exiting (WORKER_RESTARTS in RESTART_WINDOW_S); the API exiting stops everything.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import requests

from queue_jobs.config.env_reader import exit_on_bad_settings
from queue_jobs.config.settings import QueueSettings
from queue_jobs.db.embedded import start_embedded, uri_for
from queue_jobs.db.migrate import apply_migrations
from queue_jobs.observability.logs import WEB_WORKER_READY
from webapp.config import WebConfig, dev_ops_token

PROJECT_DIR = Path(__file__).resolve().parent.parent

BIN = Path(sys.executable).parent
WORKER_RESTARTS = 5
RESTART_WINDOW_S = 60.0
# Once both answer, the banner waits for every gunicorn worker's ready line (each writes
# its boot lines when it has loaded the app, the last maybe seconds after the first), then
# for the children to be BOOT_QUIET_S without a line; BOOT_WAIT_MAX_S at most (LOG_LEVEL
# above INFO hides the ready lines).
READY_LINE = WEB_WORKER_READY.encode()
BOOT_QUIET_S = 0.5
BOOT_WAIT_MAX_S = 15.0


class Console:
    """The children's output and ours on one screen, whole lines at a time. At a terminal
    the children write to a pseudo-terminal (so they choose text, in colour), elsewhere to
    a pipe; a thread copies their lines to our stderr and notes when the last one came."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_line = time.monotonic()
        self.web_workers_ready = 0
        if sys.stderr.isatty():
            self._source, self.sink = os.openpty()
            tty.setraw(self.sink)  # lines as written: no \r added to each \n
        else:
            self._source, self.sink = os.pipe()
        threading.Thread(target=self._copy, name="console", daemon=True).start()

    def say(self, text: str = "") -> None:
        with self._lock:
            print(text, flush=True)

    def wait_booted(self, web_workers: int, quiet_s: float = BOOT_QUIET_S,
                    at_most_s: float = BOOT_WAIT_MAX_S) -> None:
        """Until `web_workers` gunicorn workers have said they are ready and no line has
        come for `quiet_s`."""
        deadline = time.monotonic() + at_most_s
        while (now := time.monotonic()) < deadline:
            with self._lock:
                silent = now - self._last_line
                ready = self.web_workers_ready >= web_workers
            if ready and silent >= quiet_s:
                return
            time.sleep(max(quiet_s - silent, 0.05))

    def _copy(self) -> None:
        pending = b""
        out = sys.stderr.buffer
        while True:
            try:
                chunk = os.read(self._source, 65536)
            except OSError:  # the pseudo-terminal's other end is closed
                chunk = b""
            pending += chunk
            lines, _, pending = pending.rpartition(b"\n") if chunk else (pending, b"", b"")
            if lines:
                with self._lock:
                    out.write(lines + b"\n")
                    out.flush()
                    self._last_line = time.monotonic()
                    self.web_workers_ready += lines.count(READY_LINE)
            if not chunk:
                return


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # Explicit handlers: a shell starting us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    env = dict(os.environ)
    env.setdefault("PORT", "8000")
    # The ops page needs a token: OPS_TOKEN, else the one kept under var/ (set but empty:
    # no ops page, as in production).
    if "OPS_TOKEN" not in env:
        env["OPS_TOKEN"] = dev_ops_token()
    ops_token = env["OPS_TOKEN"].strip()
    env.setdefault("WORKER_METRICS_PORT", str(_free_port()))
    # Both sides' settings as the children will read them: a bad value stops here, before
    # PostgreSQL is started.
    with exit_on_bad_settings("make run"):
        settings = QueueSettings.from_env(env)
        web = WebConfig.from_env(environ=env)
        port = web.port
    worker_port = settings.metrics_port
    for number, name in ((port, "PORT"), (worker_port, "WORKER_METRICS_PORT")):
        if number and _port_in_use(number):
            print(f"port {number} is already in use: stop what runs there or set {name}",
                  flush=True)
            return 1
    server = None
    if not env.get("DATABASE_URL"):
        print("starting embedded PostgreSQL under var/pgdata ...", flush=True)
        server = start_embedded(PROJECT_DIR / "var" / "pgdata")
        env["DATABASE_URL"] = uri_for(server)
    applied = apply_migrations(env["DATABASE_URL"])
    print(f"schema current ({len(applied)} migration(s) applied now)", flush=True)
    if settings.llm_provider == "offline":
        print("LLM provider: offline (no OPENAI_API_KEY): results are derived from the page "
              "itself, images drawn locally", flush=True)
    else:
        print(f"LLM provider: openai, model {settings.openai_model}", flush=True)
    console = Console()

    def start(program: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen([str(program)], cwd=PROJECT_DIR, env=env,
                                stdin=subprocess.DEVNULL, stdout=console.sink,
                                stderr=console.sink)

    def start_worker() -> subprocess.Popen[bytes]:
        return start(BIN / "jobs-worker")

    children = [start(BIN / "jobs-web"), start_worker()]
    url = f"http://127.0.0.1:{port}"
    ready = [f"{url}/readyz"]
    worker_url = None
    if worker_port:
        host = settings.metrics_host
        host = "127.0.0.1" if host == "0.0.0.0" else f"[{host}]" if ":" in host else host
        worker_url = f"http://{host}:{worker_port}"
        ready.append(f"{worker_url}/healthz")
    try:
        _wait_ready(ready, children)
        console.wait_booted(web.web_concurrency)
        # The embedded server's address has no password: safe to print for jobs-admin.
        embedded = env["DATABASE_URL"] if server is not None else None
        console.say(_banner(url, ops_token, worker_url, embedded))
        worker_starts: list[float] = []
        while children[0].poll() is None:
            time.sleep(0.5)
            code = children[1].poll()
            if code is None:
                continue
            now = time.monotonic()
            worker_starts = [at for at in worker_starts if now - at < RESTART_WINDOW_S]
            if len(worker_starts) >= WORKER_RESTARTS:
                console.say(f"the worker keeps exiting (code {code}); stopping")
                return 1
            console.say(f"the worker exited (code {code}); starting it again")
            worker_starts.append(now)
            children[1] = start_worker()
        console.say("the API exited; stopping")
        return 1
    except KeyboardInterrupt:
        console.say("\nstopping ...")
        return 0
    finally:
        _stop(children)
        if server is not None:
            server.cleanup()


def _banner(url: str, ops_token: str, worker_url: str | None,
            embedded_database: str | None = None) -> str:
    lines = ["", f"  API ready at {url}  (Ctrl-C stops everything)",
             f"  API docs at {url}/api/v1/openapi.json (OpenAPI; prose: docs/api.md)",
             f"  demo page at {url}/",
             f"  ops page at {url}/ops#token={ops_token}" if ops_token
             else "  no ops page: OPS_TOKEN is set empty"]
    if worker_url:
        lines.append(f"  worker health at {worker_url}/healthz, metrics at {worker_url}/metrics")
    if embedded_database:
        lines.append(f"  operators' command line: DATABASE_URL='{embedded_database}' "
                     ".venv/bin/jobs-admin --help")
    return "\n".join([*lines, ""])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait_ready(urls: list[str], children: list[subprocess.Popen[bytes]]) -> None:
    """Until each URL (the API's /readyz, the worker's /healthz) answers 200."""
    deadline = time.monotonic() + 60
    waiting = list(urls)
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            raise SystemExit("the API or the worker failed to start")
        for url in list(waiting):
            try:
                if requests.get(url, timeout=5).status_code == 200:
                    waiting.remove(url)
            except requests.RequestException:
                pass
        if not waiting:
            return
        time.sleep(0.2)
    raise SystemExit(f"{', '.join(waiting)} did not answer 200 within 60 s")


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()


if __name__ == "__main__":
    sys.exit(main())
