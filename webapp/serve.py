"""`jobs-web`: the API under gunicorn with the shipped settings (webapp/gunicorn_conf.py).

Extra arguments go to gunicorn, e.g. `jobs-web --workers 4`."""

from __future__ import annotations

import sys
from pathlib import Path

from gunicorn.app.wsgiapp import run

# By file, not `python:webapp.gunicorn_conf`: importing it as a module would import the
# webapp package (and prometheus_client) before the conf sets PROMETHEUS_MULTIPROC_DIR.
SETTINGS_FILE = Path(__file__).resolve().with_name("gunicorn_conf.py")


def main() -> None:
    sys.argv = ["jobs-web", "-c", str(SETTINGS_FILE), *sys.argv[1:], "wsgi:app"]
    run()
