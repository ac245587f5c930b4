"""`jobs-web`: the API under gunicorn with the shipped settings (webapp.gunicorn_conf).

Extra arguments go to gunicorn, e.g. `jobs-web --workers 4`."""

from __future__ import annotations

import sys

from queue_jobs.env_reader import exit_on_bad_settings
from webapp.config import WebConfig


def main() -> None:
    # gunicorn reads WEB_CONCURRENCY with int() as it is imported, before its config file
    # (which reads every setting): read the settings first, so that a bad value there is
    # named in one line too, not in a traceback of gunicorn's.
    with exit_on_bad_settings("jobs-web"):
        WebConfig.from_env()
    from gunicorn.app.wsgiapp import run  # only now: see above

    sys.argv = ["jobs-web", "-c", "python:webapp.gunicorn_conf", *sys.argv[1:], "wsgi:app"]
    run()
