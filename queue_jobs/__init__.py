"""The queue side of the job service, by concern:

- `models`: the shapes every layer shares (owners, rows, job statuses);
- `config/`: every environment read of the queue side in one settings object, and the typed
  reads (with one-line errors) both sides use;
- `db/`: connection pools, the named SQL queries (`store`), migrations;
- `services/`: job, account and organization rules, fair use; all that `webapp` may call;
- `pipeline/`: the job types' steps as plain functions, the LLM providers, the fetcher;
- `runs/`: a pipeline run against the database (journal, fences, per-process resources);
- `worker/`: the procrastinate App, its tasks, the reaper, housekeeping, the worker process;
- `observability/`: logs, metrics, the ops dashboards.

Nothing under this package imports Flask (import-linter contracts in setup.cfg)."""

from typing import Any


def __getattr__(name: str) -> Any:
    # `procrastinate --app=queue_jobs.app` reads the attribute `app` of this package; load it
    # lazily so that the web side, which imports queue_jobs, never builds a worker App.
    if name == "app":
        from queue_jobs.worker.app import app

        return app
    raise AttributeError(name)
