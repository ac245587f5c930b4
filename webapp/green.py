"""gevent's monkey-patching for the web process (WEB_WORKER_CLASS=gevent, the default;
WebConfig validates the value later).

It must come before anything imports psycopg: psycopg picks its wait function when it is
imported (a blocking C one unless `select` is already patched), and a blocking wait on the
live-status listener would stall every request of the process. So `jobs-web`
(webapp/serve.py) and webapp/gunicorn_conf.py call this first, and this package's __init__
imports nothing heavy until create_app runs; create_app refuses to start if psycopg would
block (queue_jobs.services.connections.check_cooperative_waits). A function, not an
import side effect: importing the web modules (a test, a tool) must not patch anything."""

from __future__ import annotations

import os


def patch_for_gevent_worker() -> None:
    if os.environ.get("WEB_WORKER_CLASS", "gevent") == "gevent":
        from gevent import monkey

        monkey.patch_all()
