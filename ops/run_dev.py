"""`make run`: embedded PostgreSQL (unless DATABASE_URL), migrations, API and one worker.

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
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from queue_jobs.config.env_reader import exit_on_bad_settings
from queue_jobs.config.settings import QueueSettings
from queue_jobs.db.embedded import start_embedded, uri_for
from queue_jobs.db.migrate import apply_migrations
from webapp.config import WebConfig

PROJECT_DIR = Path(__file__).resolve().parent.parent

BIN = Path(sys.executable).parent
WORKER_RESTARTS = 5
RESTART_WINDOW_S = 60.0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # Explicit handlers: a shell starting us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    env = dict(os.environ)
    env.setdefault("PORT", "8000")
    # The ops page needs a token; a fresh one per start unless you set OPS_TOKEN.
    ops_token = env.setdefault("OPS_TOKEN", secrets.token_urlsafe(18))
    env.setdefault("WORKER_METRICS_PORT", str(_free_port()))
    # Both sides' settings as the children will read them: a bad value stops here, before
    # PostgreSQL is started.
    with exit_on_bad_settings("make run"):
        settings = QueueSettings.from_env(env)
        port = WebConfig.from_env(environ=env).port
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
    def start_worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen([str(BIN / "jobs-worker")], cwd=PROJECT_DIR, env=env)

    children = [
        subprocess.Popen([str(BIN / "jobs-web")], cwd=PROJECT_DIR, env=env),
        start_worker(),
    ]
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
        print(f"\n  API ready at {url}  (Ctrl-C stops everything)", flush=True)
        print(f"  ops page at {url}/ops#token={ops_token}", flush=True)
        if worker_url:
            print(f"  worker health at {worker_url}/healthz, metrics at {worker_url}/metrics",
                  flush=True)
        print(flush=True)
        worker_starts: list[float] = []
        while children[0].poll() is None:
            time.sleep(0.5)
            code = children[1].poll()
            if code is None:
                continue
            now = time.monotonic()
            worker_starts = [at for at in worker_starts if now - at < RESTART_WINDOW_S]
            if len(worker_starts) >= WORKER_RESTARTS:
                print(f"the worker keeps exiting (code {code}); stopping", flush=True)
                return 1
            print(f"the worker exited (code {code}); starting it again", flush=True)
            worker_starts.append(now)
            children[1] = start_worker()
        print("the API exited; stopping", flush=True)
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    finally:
        _stop(children)
        if server is not None:
            server.cleanup()


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
