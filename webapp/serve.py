"""`jobs-web`: the API under gunicorn with the shipped settings (webapp/gunicorn_conf.py).

Extra arguments go to gunicorn, e.g. `jobs-web --workers 4`."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from queue_jobs.config.env_reader import exit_on_bad_settings
from webapp.green import patch_for_gevent_worker

# By file, not `python:webapp.gunicorn_conf`: importing it as a module would import the
# webapp package (and prometheus_client) before the conf sets PROMETHEUS_MULTIPROC_DIR.
SETTINGS_FILE = Path(__file__).resolve().with_name("gunicorn_conf.py")


def main() -> None:
    patch_for_gevent_worker()  # first: before the settings below import psycopg
    # This process becomes gunicorn's master, and reading the settings below imports the
    # webapp package, prometheus_client with it: the multiprocess directory must be chosen
    # first (the settings file keeps it, as it does under plain gunicorn).
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="jobs-metrics-"))
    # gunicorn reads WEB_CONCURRENCY with int() as it is imported, before its settings file
    # (which reads every setting): read the settings first, so that a bad value there is
    # named in one line too, not in a traceback of gunicorn's.
    with exit_on_bad_settings("jobs-web"):
        from webapp.config import WebConfig

        WebConfig.from_env()
    from gunicorn.app.wsgiapp import run  # only now: see above

    sys.argv = ["jobs-web", "-c", str(SETTINGS_FILE), *sys.argv[1:], "wsgi:app"]
    run()
