"""Pausing a job type on real PostgreSQL: held jobs, what their owners see (polls from the
database and from memory, event streams), real workers that finish what they started and
start nothing held, resume in creation order with fair turns, the reaper, and a pause
made while workers are fetching."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from queue_jobs.db import store
from queue_jobs.models import CreateLimits, Owner
from queue_jobs.services import pauses
from queue_jobs.services.errors import JobTypeNotFound, ValidationFailed
from queue_jobs.services.fair_use import FairUse
from queue_jobs.worker import reaper
from queue_jobs.worker.job_run import FIRST_STEPS
from tests.fakes.website import FakeWebsite
from tests.integration.support import (
    ApiClient,
    SseReader,
    ThreadWorker,
    live_server,
    new_session,
    wait_until,
)

ANALYSIS = "website-analysis"
HELD_MESSAGE = "Website analysis is paused by an operator: the LLM provider is down"


def _pause(db: psycopg.Connection[Any], reason: str = "the LLM provider is down",
           job_type: str = ANALYSIS) -> pauses.PauseOutcome:
    return pauses.pause_job_type(db, job_type, "ops:test", reason)


def _resume(db: psycopg.Connection[Any], job_type: str = ANALYSIS,
            **options: Any) -> pauses.ResumeOutcome:
    return pauses.resume_job_type(db, job_type, "ops:test", **options)


def _row(db: psycopg.Connection[Any], job_id: str) -> tuple[str, int | None]:
    row = db.execute("SELECT status, dispatch_id FROM jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return row[0], row[1]


def _dispatches_of(db: psycopg.Connection[Any], job_id: str) -> list[str]:
    """The statuses of every procrastinate job that would run `job_id`."""
    rows = db.execute("SELECT status::text FROM procrastinate_jobs WHERE args ->> 'job_id' = %s",
                      (job_id,)).fetchall()
    return [row[0] for row in rows]


def _held(document: dict[str, Any], message: str = HELD_MESSAGE) -> bool:
    return (document["status"] == "queued" and document["pausedReason"] == message
            and document["queuePosition"] is None
            and document["estimatedTimeRemaining"] is None)


class Fetcher:
    """Takes jobs the way a procrastinate worker does (procrastinate_fetch_job_v2), then
    claims them as the worker's run does (the dispatch fence)."""

    def __init__(self, db: psycopg.Connection[Any]) -> None:
        self.db = db
        row = db.execute("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id")
        self.worker_id = row.fetchone()[0]  # type: ignore[index]

    def fetch(self) -> tuple[int, str] | None:
        row = self.db.execute(
            "SELECT id, args ->> 'job_id' FROM procrastinate_fetch_job_v2(ARRAY['jobs'], %s)",
            (self.worker_id,)).fetchone()
        return None if row is None or row[0] is None else (int(row[0]), str(row[1]))

    def take(self) -> str | None:
        """The next job handed out, claimed (running); AssertionError if its claim fails."""
        fetched = self.fetch()
        if fetched is None:
            return None
        dispatch_id, job_id = fetched
        claimed = store.claim_job(self.db, uuid.UUID(job_id), dispatch_id, FIRST_STEPS)
        assert claimed is not None, f"job {job_id}: fetched dispatch {dispatch_id} not claimable"
        return job_id


class FetchingWorkers:
    """Threads that fetch and claim jobs, each on a connection of its own, until stopped
    or nothing is left; started once the first has taken a job."""

    def __init__(self, db_url: str, count: int) -> None:
        self.db_url = db_url
        self.taken: list[str] = []
        self.errors: list[BaseException] = []
        self.started = threading.Event()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._work) for _ in range(count)]
        for thread in self.threads:
            thread.start()
        assert self.started.wait(10), self.errors

    def _work(self) -> None:
        try:
            with psycopg.connect(self.db_url, autocommit=True) as conn:
                fetcher = Fetcher(conn)
                while not self.done.is_set() and (job_id := fetcher.take()) is not None:
                    self.taken.append(job_id)
                    self.started.set()
        except BaseException as error:  # the test asserts there were none
            self.errors.append(error)
            self.started.set()

    def stop(self) -> list[str]:
        """The jobs taken; AssertionError if a fetch or a claim failed."""
        self.done.set()
        for thread in self.threads:
            thread.join(30)
        assert self.errors == []
        return self.taken


@pytest.fixture
def roomy_api(api_factory: Callable[..., ApiClient]) -> ApiClient:
    """An API with room for a backlog per owner, fair dispatch on."""
    return api_factory(fair_use=replace(FairUse(), max_active_per_session=30,
                                        max_active_per_user=30,
                                        creates_per_address_per_minute=0))


@pytest.mark.slow
def test_a_paused_type_holds_new_jobs_lets_running_ones_finish_and_runs_them_on_resume(
        api: ApiClient, db: psycopg.Connection[Any], settings: Any,
        website: FakeWebsite) -> None:
    session = new_session()
    website.set_slow("/slow", 1.5)
    with ThreadWorker(settings, concurrency=2):
        running = api.create_analysis(website.url("/slow"), session)
        api.wait_for_status(running, session, {"running"})
        outcome = _pause(db)
        assert outcome == pauses.PauseOutcome(ANALYSIS, changed=True, held_back=0)

        held = api.create_analysis(website.url("/"), session)  # 201 as always
        document = api.status(held, session)
        assert _held(document), document
        assert document["currentStep"] is None
        assert _row(db, held) == ("queued", None) and _dispatches_of(db, held) == []
        # The run started before the pause finishes; then both slots are idle, and the
        # held job has no procrastinate job that either could take.
        assert api.wait_for_status(running, session, {"succeeded", "failed"})["status"] \
            == "succeeded"
        assert _held(api.status(held, session))
        assert _dispatches_of(db, held) == []
        listed = api.http.get("/api/v1/jobs", headers=session).get_json()["jobs"]
        assert [job["pausedReason"] for job in listed] == [HELD_MESSAGE, None]

        assert _resume(db) == pauses.ResumeOutcome(ANALYSIS, changed=True, released=1)
        document = api.wait_for_status(held, session, {"succeeded", "failed"})
        assert document["status"] == "succeeded" and document["pausedReason"] is None
    assert pauses.paused_job_types(db) == []


def test_a_pause_takes_back_queued_dispatches_and_a_resume_gives_them_back_in_order(
        roomy_api: ApiClient, db: psycopg.Connection[Any], website: FakeWebsite) -> None:
    ann, bob = new_session(), new_session()
    before = [roomy_api.create_analysis(website.url("/"), ann) for _ in range(3)]
    bobs = roomy_api.create_analysis(website.url("/"), bob)
    assert _pause(db).held_back == 4
    for job_id in [*before, bobs]:
        assert _row(db, job_id) == ("queued", None) and _dispatches_of(db, job_id) == []
    during = [roomy_api.create_analysis(website.url("/"), ann) for _ in range(2)]
    assert [pause.held_jobs for pause in pauses.paused_job_types(db)] == [6]
    assert Fetcher(db).take() is None  # nothing for a worker to take

    # Batches of 2: four transactions, the pause dropped with the last.
    assert _resume(db, batch=2) == pauses.ResumeOutcome(ANALYSIS, changed=True, released=6)
    anns = [*before, *during]
    dispatches = [int(_row(db, job_id)[1] or 0) for job_id in anns]
    assert 0 not in dispatches and dispatches == sorted(dispatches)  # creation order
    # Ann's jobs have turns 0..4 (priority 0..-4) and Bob's turn 0: Bob's comes second.
    priorities = [db.execute("SELECT priority FROM procrastinate_jobs WHERE id = %s",
                             (dispatch,)).fetchone()[0]  # type: ignore[index]
                  for dispatch in dispatches]
    assert priorities == [0, -1, -2, -3, -4]
    fetcher = Fetcher(db)
    assert [fetcher.take() for _ in range(7)] == [anns[0], bobs, *anns[1:], None]


def test_a_stream_and_polls_from_memory_see_a_pause_and_a_resume(
        api: ApiClient, db: psycopg.Connection[Any], website: FakeWebsite) -> None:
    session = new_session()
    queued = api.create_analysis(website.url("/"), session)
    with live_server(api.app) as base:
        stream = SseReader(base, queued, session)
        first = stream.next_event()
        assert first is not None and first.document["pausedReason"] is None
        assert first.document["queuePosition"] == 1

        _pause(db)
        paused = stream.next_event()
        assert paused is not None and _held(paused.document), paused
        # a poll, then one answered from memory: both held
        feed = api.app.extensions["live_feed"]
        api.settled(db)
        assert _held(api.status(queued, session))
        from_memory = feed.answered_from_memory
        assert _held(api.status(queued, session))
        assert feed.answered_from_memory == from_memory + 1

        created_while_paused = api.create_analysis(website.url("/"), session)
        late = SseReader(base, created_while_paused, session)
        opened = late.next_event()
        assert opened is not None and _held(opened.document)

        _resume(db)
        for reader, position in ((stream, 1), (late, 2)):
            resumed = reader.next_event()
            assert resumed is not None, "the stream ended"
            assert resumed.document["pausedReason"] is None
            assert resumed.document["queuePosition"] == position, resumed.document
            reader.close()
        api.settled(db)
        assert api.status(queued, session)["pausedReason"] is None


def test_the_reaper_leaves_held_jobs_alone_and_holds_what_it_recovers(
        api: ApiClient, db: psycopg.Connection[Any], db_url: str,
        website: FakeWebsite) -> None:
    session = new_session()
    lost = api.create_analysis(website.url("/"), session)
    fetcher = Fetcher(db)
    assert fetcher.take() == lost  # running on a worker that then dies
    db.execute("UPDATE procrastinate_workers SET last_heartbeat = greatest("
               "now() - interval '1 minute', pg_postmaster_start_time()) WHERE id = %s",
               (fetcher.worker_id,))
    _pause(db)
    held = [api.create_analysis(website.url("/"), session) for _ in range(2)]

    def reap() -> reaper.ReapReport:
        with ConnectionPool(db_url, min_size=1, max_size=2) as pool:
            return reaper.reap(pool, stalled_after_s=3, max_lost_runs=3, job_timeout_s=600)

    report = reap()
    # The lost run is recovered: held like the others, not dispatched again.
    assert report.redispatched == [lost] and report.failed == []
    assert [_row(db, job_id) for job_id in [lost, *held]] == [("queued", None)] * 3
    assert _held(api.status(lost, session))
    assert reap().redispatched == []  # held jobs are not lost ones
    assert [_row(db, job_id) for job_id in [lost, *held]] == [("queued", None)] * 3
    assert Fetcher(db).fetch() is None

    # A pause deleted by hand instead of resumed: the reaper dispatches its jobs.
    db.execute("DELETE FROM job_type_pauses")
    assert sorted(reap().redispatched) == sorted([lost, *held])
    assert all("todo" in _dispatches_of(db, job_id) for job_id in [lost, *held])


def test_a_pause_made_while_workers_fetch_leaves_every_fetched_dispatch_running(
        db: psycopg.Connection[Any], db_url: str) -> None:
    """Workers fetch (FOR UPDATE SKIP LOCKED) while the type is paused: each dispatch is
    either fetched, and its job then runs (the claim's fence holds), or taken back, and
    its job is held; never both, never neither."""
    jobs = 300
    limits = CreateLimits(max_active=jobs, address_key="test", address_limit=0,
                          address_window_s=60)
    for round_ in range(3):
        created = set()
        for _ in range(jobs):
            job_id = uuid.uuid4()
            store.create_job(db, job_id, ANALYSIS, Owner(None, f"sess_race_{round_}"),
                             {"url": "http://127.0.0.1/"}, limits)
            created.add(str(job_id))
        workers = FetchingWorkers(db_url, 3)
        outcome = _pause(db)
        taken = workers.stop()
        rows = dict(db.execute(
            "SELECT id::text, status FROM jobs WHERE id::text = ANY (%s)",
            (list(created),)).fetchall())
        held = {job_id for job_id, status in rows.items() if status == "queued"}
        assert set(taken) == {job_id for job_id, status in rows.items()
                              if status == "running"}
        assert held.isdisjoint(taken) and len(held) + len(taken) == jobs
        assert outcome.held_back == len(held) > 0, (round_, len(taken))
        assert all(_row(db, job_id)[1] is None and _dispatches_of(db, job_id) == []
                   for job_id in held)
        # Every fetched dispatch is one a worker is running: 'doing', its job's own.
        assert db.execute(
            "SELECT count(*) FROM jobs j JOIN procrastinate_jobs pj ON pj.id = j.dispatch_id"
            " WHERE j.id::text = ANY (%s) AND pj.status = 'doing' AND j.status = 'running'",
            (taken,)).fetchone()[0] == len(taken)  # type: ignore[index]
        _resume(db)
        db.execute("DELETE FROM jobs")
        db.execute("DELETE FROM procrastinate_jobs")


def test_pause_and_resume_are_idempotent_and_say_so(
        api: ApiClient, db: psycopg.Connection[Any], website: FakeWebsite) -> None:
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    assert _pause(db, "  maintenance\n until noon ") == pauses.PauseOutcome(ANALYSIS, True, 1)
    assert _pause(db, "another reason") == pauses.PauseOutcome(ANALYSIS, False, 0)
    [paused] = pauses.paused_job_types(db)
    assert (paused.type, paused.reason, paused.paused_by, paused.held_jobs) == (
        ANALYSIS, "maintenance until noon", "ops:test", 1)  # the first pause stands
    assert api.status(job_id, session)["pausedReason"] == (
        "Website analysis is paused by an operator: maintenance until noon")
    assert _resume(db) == pauses.ResumeOutcome(ANALYSIS, True, 1)
    assert _resume(db) == pauses.ResumeOutcome(ANALYSIS, False, 0)
    # No reason: the message says only that it is paused.
    assert _pause(db, "").held_back == 1
    assert api.status(job_id, session)["pausedReason"] == (
        "Website analysis is paused by an operator.")


def test_a_retried_or_cancelled_job_of_a_paused_type(
        api: ApiClient, db: psycopg.Connection[Any], website: FakeWebsite) -> None:
    session = new_session()
    failed, cancelled = (api.create_analysis(website.url("/"), session) for _ in range(2))
    dispatch = _row(db, failed)[1]
    assert dispatch is not None
    assert store.fail_job(db, uuid.UUID(failed), dispatch, "Boom", "LLM_ERROR")
    _pause(db)
    response = api.http.post(f"/api/v1/jobs/{failed}/retry", headers=session)
    assert response.status_code == 200, response.get_json()
    assert _held(api.status(failed, session))
    assert _row(db, failed) == ("queued", None)
    response = api.http.post(f"/api/v1/jobs/{cancelled}/cancel", headers=session)
    assert response.status_code == 200, response.get_json()
    assert api.status(cancelled, session)["errorCode"] == "CANCELLED"
    assert _resume(db).released == 1


def test_unknown_types_and_unreadable_reasons_are_refused(db: psycopg.Connection[Any]) -> None:
    with pytest.raises(JobTypeNotFound) as unknown:
        pauses.pause_job_type(db, "image-resize", "ops:test", "")
    assert (unknown.value.status, unknown.value.error_code) == (404, "JOB_TYPE_NOT_FOUND")
    with pytest.raises(JobTypeNotFound):
        pauses.resume_job_type(db, "image-resize", "ops:test")
    for reason in ("x" * (pauses.MAX_REASON_CHARS + 1), "nul\x00byte", "\ud800"):
        with pytest.raises(ValidationFailed):
            pauses.pause_job_type(db, ANALYSIS, "ops:test", reason)
    assert pauses.paused_job_types(db) == []
    # The table's checks hold the same rules for a pause written by hand.
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("INSERT INTO job_type_pauses (type, reason, paused_by) VALUES (%s, %s, 'x')",
                   (ANALYSIS, "x" * (pauses.MAX_REASON_CHARS + 1)))
    # every job type can be paused (the table's check lists them all)
    for job_type in ("website-analysis", "content-generation"):
        assert pauses.pause_job_type(db, job_type, "ops:test", "").changed


def test_creates_racing_a_pause_never_leave_a_dispatch_behind(
        db: psycopg.Connection[Any], db_url: str) -> None:
    """Jobs created while a pause commits are either dispatched before it (and taken
    back by it) or held: the type's lock orders each create with the pause."""
    limits = CreateLimits(max_active=100_000, address_key="test", address_limit=0,
                          address_window_s=60)
    stop = threading.Event()
    errors: list[BaseException] = []

    def create() -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                owner = Owner(None, f"sess_{uuid.uuid4().hex}")
                while not stop.is_set():
                    store.create_job(conn, uuid.uuid4(), ANALYSIS, owner,
                                     {"url": "http://127.0.0.1/"}, limits)
        except BaseException as error:  # the test asserts there were none
            errors.append(error)

    creators = [threading.Thread(target=create) for _ in range(3)]
    for thread in creators:
        thread.start()
    try:
        for _ in range(25):
            wait_until(lambda: db.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'"
            ).fetchone()[0] > 0, message="creates")  # type: ignore[index]
            _pause(db)
            left = db.execute(
                "SELECT count(*) FROM jobs j JOIN procrastinate_jobs pj ON pj.id = j.dispatch_id"
                " WHERE j.type = %s AND pj.status = 'todo'", (ANALYSIS,)).fetchone()
            assert left == (0,)
            _resume(db)
    finally:
        stop.set()
        for thread in creators:
            thread.join(30)
    assert errors == []
