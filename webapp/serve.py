"""`jobs-web`: the API under gunicorn with the shipped settings (webapp.gunicorn_conf).

Extra arguments go to gunicorn, e.g. `jobs-web --workers 4`."""

from __future__ import annotations

import sys

from gunicorn.app.wsgiapp import run


def main() -> None:
    sys.argv = ["jobs-web", "-c", "python:webapp.gunicorn_conf", *sys.argv[1:], "wsgi:app"]
    run()
