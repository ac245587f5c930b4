"""gevent's patching must precede psycopg's import, or psycopg's waits block the process:
webapp/green.py patches on import, and the app refuses to start in the wrong order."""

from __future__ import annotations

import subprocess
import sys

CHECK = "from queue_jobs.services.connections import check_cooperative_waits; " \
        "check_cooperative_waits(); print('cooperative')"


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={"WEB_WORKER_CLASS": "gevent", "PATH": ""})


def test_the_shipped_order_makes_psycopg_wait_cooperatively() -> None:
    done = _run("from webapp.green import patch_for_gevent_worker; "
                "patch_for_gevent_worker(); " + CHECK)
    assert done.returncode == 0 and done.stdout.strip() == "cooperative", done.stderr


def test_psycopg_imported_before_the_patching_is_refused() -> None:
    done = _run("import psycopg; from webapp.green import patch_for_gevent_worker; "
                "patch_for_gevent_worker(); " + CHECK)
    assert done.returncode != 0
    assert "psycopg was imported before gevent's monkey-patching" in done.stderr


def test_importing_the_web_modules_patches_nothing() -> None:
    done = _run("import sys, webapp.serve, webapp.green; "
                "print('gevent.monkey' in sys.modules)")
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr
