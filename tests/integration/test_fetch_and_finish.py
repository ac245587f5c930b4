"""Fewer round trips a job: a worker's fetch claims the run's job in the same statement,
and the run's success ends procrastinate's job in the same transaction as ours. A
superseded dispatch, fetched, still ends as it always did."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from queue_jobs import models
from queue_jobs.config.settings import QueueSettings
from queue_jobs.db import store
from queue_jobs.runs.resources import close_all
from queue_jobs.worker.app import app as queue_app
from queue_jobs.worker.job_run import FIRST_STEPS
from queue_jobs.worker.resilient import ResilientWorker
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.website import FakeWebsite
from tests.integration.support import ApiClient, new_session

T = TypeVar("T")


def with_worker(settings: QueueSettings, use: Callable[[ResilientWorker], Awaitable[T]],
                **options: Any) -> T:
    """`use(worker)` with a worker of the App on the test's database (not started)."""

    async def main() -> T:
        pool = AsyncConnectionPool(settings.database_url, min_size=1, max_size=4, open=False)
        await pool.open(wait=True)
        try:
            async with queue_app.open_async(pool):
                queue_app.perform_import_paths()
                worker = queue_app._worker(
                    queues=["jobs"], install_signal_handlers=False, listen_notify=False,
                    additional_context={"settings": settings}, **options)
                assert isinstance(worker, ResilientWorker)
                return await use(worker)
        finally:
            await pool.close()
            # as tests.integration.support.ThreadWorker: procrastinate keeps this pool
            connector: Any = queue_app.connector
            connector._async_pool = None
            connector._pool_externally_set = False
            close_all()

    # In a thread of its own: the session may already run an event loop in this one
    # (Playwright's sync API does).
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(asyncio.run(main()))
        except BaseException as error:  # re-raised in the test's thread
            errors.append(error)

    thread = threading.Thread(target=run, name="test-fetch-worker")
    thread.start()
    thread.join(60)
    if errors:
        raise errors[0]
    assert results, "the worker did not finish within 60 s"
    return results[0]


def drain(settings: QueueSettings, **options: Any) -> ResilientWorker:
    """A worker that runs every job of the queue, then stops (wait=False)."""

    async def run(worker: ResilientWorker) -> ResilientWorker:
        await worker.run()
        return worker

    return with_worker(settings, run, wait=False, **options)


def fetch_one(settings: QueueSettings) -> tuple[Any, ResilientWorker]:
    """The worker's fetch alone: the job it took, nothing run."""

    async def fetch(worker: ResilientWorker) -> tuple[Any, ResilientWorker]:
        worker.worker_id = await queue_app.job_manager.register_worker()
        return await worker._fetch_job(), worker

    return with_worker(settings, fetch)


def rows(db: psycopg.Connection[Any], job_id: str) -> dict[str, Any]:
    row = db.execute(
        "SELECT j.status AS job_status, j.current_step, j.run_started_at, "
        "j.xmin::text AS job_xmin, j.dispatch_id, pj.status::text AS dispatch_status "
        "FROM jobs j LEFT JOIN procrastinate_jobs pj ON pj.id = j.dispatch_id "
        "WHERE j.id = %s", (job_id,)).fetchone()
    assert row is not None
    names = ("job_status", "current_step", "run_started_at", "job_xmin", "dispatch_id",
             "dispatch_status")
    return dict(zip(names, row, strict=True))


def events(db: psycopg.Connection[Any], dispatch_id: int) -> list[str]:
    return [row[0] for row in db.execute(
        "SELECT type::text FROM procrastinate_events WHERE job_id = %s ORDER BY id",
        (dispatch_id,))]


def event_xmin(db: psycopg.Connection[Any], dispatch_id: int, event: str) -> str:
    """The transaction that wrote the dispatch's event (procrastinate's triggers write
    them as its row changes; the row itself changes again as its worker unregisters)."""
    row = db.execute("SELECT xmin::text FROM procrastinate_events WHERE job_id = %s "
                     "AND type = %s", (dispatch_id, event)).fetchone()
    assert row is not None
    return str(row[0])


def stale_dispatch(db: psycopg.Connection[Any], job_id: str) -> int:
    """A second dispatch of the job, fetched before its current one: superseded."""
    row = db.execute(
        "SELECT (procrastinate_defer_jobs_v1(ARRAY[ROW('jobs', 'run_job', 1000, NULL, NULL, "
        "%s, NULL)::procrastinate_job_to_defer_v1]))[1]", (Jsonb({"job_id": job_id}),)
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_fetch_claims_the_job_in_its_own_transaction(
        api: ApiClient, db: psycopg.Connection[Any], settings: QueueSettings,
        website: FakeWebsite) -> None:
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    assert rows(db, job_id)["job_status"] == "queued"

    job, worker = fetch_one(settings)

    after = rows(db, job_id)
    assert job.id == after["dispatch_id"] and job.task_name == "run_job"
    # Running before any task code ran, written by the fetch's own transaction.
    assert after["job_status"] == "running" and after["dispatch_status"] == "doing"
    assert after["run_started_at"] is not None
    assert after["current_step"] == FIRST_STEPS["website-analysis"]
    assert after["job_xmin"] == event_xmin(db, job.id, "started")
    prefetched = worker.handoff.get(job.id)
    assert prefetched is not None and isinstance(prefetched.claim, models.ClaimedJob)
    assert str(prefetched.claim.id) == job_id and prefetched.claim.type == "website-analysis"


def test_a_superseded_dispatch_is_fetched_without_claiming_and_ends_as_before(
        api: ApiClient, db: psycopg.Connection[Any], settings: QueueSettings,
        fake_llm: FakeOpenAI, website: FakeWebsite) -> None:
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    current = rows(db, job_id)["dispatch_id"]
    stale = stale_dispatch(db, job_id)

    job, worker = fetch_one(settings)
    assert job.id == stale  # higher priority: fetched first
    prefetched = worker.handoff.get(stale)
    assert prefetched is not None and prefetched.claim is None
    assert rows(db, job_id)["job_status"] == "queued"  # the fetch wrote nothing on it
    db.execute("UPDATE procrastinate_jobs SET status = 'todo', worker_id = NULL "
               "WHERE id = %s", (stale,))  # as if never fetched: the worker's turn

    drain(settings, delete_jobs="never")

    done = rows(db, job_id)
    assert done["job_status"] == "succeeded" and done["dispatch_id"] == current
    # The stale run skipped the job and its dispatch ended as any run whose claim found
    # nothing: succeeded, by the worker, once.
    stale_status = db.execute("SELECT status::text FROM procrastinate_jobs WHERE id = %s",
                              (stale,)).fetchone()
    assert stale_status == ("succeeded",)
    assert events(db, stale).count("succeeded") == 1
    assert fake_llm.calls("chat:business_analysis") == 1


def test_the_success_ends_both_rows_in_one_transaction(
        api: ApiClient, db: psycopg.Connection[Any], settings: QueueSettings,
        fake_llm: FakeOpenAI, website: FakeWebsite) -> None:
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    dispatch_id = rows(db, job_id)["dispatch_id"]

    worker = drain(settings, delete_jobs="never")

    done = rows(db, job_id)
    assert done["job_status"] == "succeeded" and done["dispatch_status"] == "succeeded"
    # procrastinate's events as its own finish writes them, once (the worker skipped its
    # own finish of this job), the last one by the transaction that ended ours.
    assert events(db, dispatch_id) == ["deferred", "started", "succeeded"]
    assert done["job_xmin"] == event_xmin(db, dispatch_id, "succeeded")
    assert worker.handoff.get(dispatch_id) is None  # settled


def test_with_delete_jobs_the_success_deletes_procrastinates_row(
        api: ApiClient, db: psycopg.Connection[Any], settings: QueueSettings,
        fake_llm: FakeOpenAI, website: FakeWebsite) -> None:
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    dispatch_id = rows(db, job_id)["dispatch_id"]

    drain(settings, delete_jobs="successful")

    assert rows(db, job_id)["job_status"] == "succeeded"
    assert db.execute("SELECT count(*) FROM procrastinate_jobs WHERE id = %s",
                      (dispatch_id,)).fetchone() == (0,)


def test_a_fenced_out_success_ends_no_dispatch(
        api: ApiClient, db: psycopg.Connection[Any], settings: QueueSettings,
        website: FakeWebsite) -> None:
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    job, _ = fetch_one(settings)  # running, its dispatch 'doing'
    stale = job.id
    # superseded meanwhile (as a reaper's re-dispatch): the run's success is refused
    db.execute("UPDATE jobs SET dispatch_id = %s WHERE id = %s", (stale + 1000, job_id))

    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        finished = store.succeed_job(conn, uuid.UUID(job_id), stale, {"success": True},
                                     finish_dispatch=True, delete_dispatch=True)

    assert finished is None
    assert db.execute("SELECT status::text FROM procrastinate_jobs WHERE id = %s",
                      (stale,)).fetchone() == ("doing",)
    assert rows(db, job_id)["job_status"] == "running"
