"""The queue side of the job service: store, job rules, tasks and the pipeline.

Nothing under this package imports Flask (an import-linter contract in setup.cfg)."""

from typing import Any


def __getattr__(name: str) -> Any:
    # `procrastinate --app=queue_jobs.app` reads the attribute `app` of this package; load it
    # lazily so that the web side, which imports queue_jobs, never builds a worker App.
    if name == "app":
        from queue_jobs.worker_app import app

        return app
    raise AttributeError(name)
