"""ResilientWorker leans on private parts of procrastinate 3.10's Worker: they must still
be there (an upgrade that renames one fails here, not in production); and the App builds
ResilientWorkers whichever way a worker is started."""

from __future__ import annotations

import inspect

from procrastinate.worker import Worker

from queue_jobs.worker.app import app
from queue_jobs.worker.link import LINK, DatabaseLink
from queue_jobs.worker.resilient import PRIVATE_ATTRIBUTES, PRIVATE_METHODS, ResilientWorker


def test_the_private_methods_it_overrides_or_calls_still_exist() -> None:
    missing = [name for name in PRIVATE_METHODS
               if not callable(getattr(Worker, name, None))]
    assert missing == []
    worker = Worker(app=app)
    assert [name for name in PRIVATE_ATTRIBUTES if not hasattr(worker, name)] == []
    # _process_job awaits _persist_job_status with these keywords.
    assert list(inspect.signature(Worker._persist_job_status).parameters) == [
        "self", "job", "status", "retry_decision", "context", "job_result"]


def test_every_worker_of_the_app_is_resilient_and_never_prunes_at_start() -> None:
    worker = app._worker(concurrency=1)
    assert isinstance(worker, ResilientWorker)
    assert worker.stalled_after_s == app.worker_defaults["stalled_worker_timeout"]
    assert worker.stalled_worker_timeout > 10 * 365 * 24 * 3600 - 1  # nothing that old
    assert isinstance(worker.additional_context, dict)
    assert worker.additional_context[LINK] is worker.link
    assert isinstance(worker.link, DatabaseLink)
    assert worker.additional_context["settings"] is app.worker_defaults[
        "additional_context"]["settings"]


def test_the_link_tells_a_reconnection_from_a_start() -> None:
    link = DatabaseLink()
    assert link.up_for_s() is None and not link.regained()
    link.lost(OSError("refused"))
    assert not link.reachable and link.reason == "OSError: refused"
    assert link.regained() and link.reachable and link.reason is None
    up_for = link.up_for_s()
    assert up_for is not None and 0 <= up_for < 5
