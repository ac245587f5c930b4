"""Fair turns per owner, queue position and the wait in the estimate, on real PostgreSQL:
jobs are created through the API and taken with procrastinate's own fetch function
(procrastinate_fetch_job_v2, as a worker does), so the order asserted is the order in which
workers start them. A dispatch's priority is minus its owner's turn
(sql/functions/jobs_dispatch_fair_turn.sql), set once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import psycopg
import pytest

from queue_jobs.db import store
from queue_jobs.models import Owner
from queue_jobs.services import jobs as job_service
from queue_jobs.services.eta import TtlCache
from queue_jobs.services.fair_use import FairUse
from queue_jobs.worker.job_run import FIRST_STEPS
from tests.fakes.website import FakeWebsite
from tests.integration.support import ApiClient, new_session

T = TypeVar("T")


@pytest.fixture
def make_api(api_factory: Callable[..., ApiClient]) -> Callable[..., ApiClient]:
    """An API with room for a backlog per owner, fair dispatch on or off."""

    def make(fair: bool = True) -> ApiClient:
        policy = replace(FairUse(), max_active_per_session=30, max_active_per_user=30,
                         creates_per_address_per_minute=0, fair_dispatch=fair)
        return api_factory(fair_use=policy)

    return make


@pytest.fixture
def fresh_estimates(monkeypatch: pytest.MonkeyPatch) -> None:
    """No cached pace or step timings from another test's database."""
    monkeypatch.setattr(job_service, "_queue_pace", TtlCache(ttl_s=0))
    monkeypatch.setattr(job_service, "_step_timings", TtlCache(ttl_s=0))


class Workers:
    """Takes jobs the way a procrastinate worker does, on a live worker row of its own."""

    def __init__(self, db: psycopg.Connection[Any]) -> None:
        self.db = db
        row = db.execute("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id")
        self.worker_id = row.fetchone()[0]  # type: ignore[index]
        self.finished: set[str] = set()

    def take(self) -> str | None:
        """The next job procrastinate hands out, claimed (running) as the worker would."""
        row = self.db.execute(
            "SELECT id, args ->> 'job_id' FROM procrastinate_fetch_job_v2(ARRAY['jobs'], %s)",
            (self.worker_id,)).fetchone()
        if row is None or row[0] is None:
            return None
        dispatch_id, job_id = row
        assert store.claim_job(self.db, uuid.UUID(job_id), dispatch_id, FIRST_STEPS)
        return str(job_id)

    def take_one(self) -> str:
        """take, when a job must be there."""
        job_id = self.take()
        assert job_id is not None
        return job_id

    def finish(self, job_id: str) -> int:
        """The job fails as a worker fails it (the fenced fail_job); answers how many
        procrastinate_jobs rows that write of ours updated (procrastinate's own end of
        the dispatch, done next, is not counted)."""
        dispatch_id = _dispatch(self.db, job_id)
        written = _dispatch_rows_updated(self.db, lambda: store.fail_job(
            self.db, uuid.UUID(job_id), dispatch_id, "Boom", "LLM_ERROR"))
        self.db.execute("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = %s",
                        (dispatch_id,))
        self.finished.add(job_id)
        return written


def _dispatch_rows_updated(db: psycopg.Connection[Any], write: Callable[[], Any]) -> int:
    """Rows of procrastinate_jobs that `write` updated, by the server's own count (what
    pg_stat_user_tables.n_tup_upd adds up), trigger writes included: read before and
    after in one transaction, as the count may hold earlier ones not yet reported."""
    count = "SELECT pg_stat_get_xact_tuples_updated('procrastinate_jobs'::regclass)"
    with db.transaction():
        before = db.execute(count).fetchone()
        assert write()
        after = db.execute(count).fetchone()
    assert before is not None and after is not None
    return int(after[0]) - int(before[0])


def _rows_read(db: psycopg.Connection[Any], table: str, call: Callable[[], T]
               ) -> tuple[int, T]:
    """Rows of `table` that `call` read (sequential and index fetches), and what it
    returned: counted as _dispatch_rows_updated counts updates."""
    count = ("SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables"
             " WHERE relname = %s")
    with db.transaction():
        before = db.execute(count, (table,)).fetchone()
        result = call()
        after = db.execute(count, (table,)).fetchone()
    assert before is not None and after is not None
    return int(after[0]) - int(before[0]), result


def _create_job(db: psycopg.Connection[Any], session_id: str, policy: FairUse) -> None:
    """A website-analysis job of an anonymous session, through the service's create."""
    job_service.create_job(db, job_service.NewJob(
        "website-analysis", Owner(user_id=None, session_id=session_id),
        {"url": "https://example.com/"}, request_body={"url": "https://example.com/"},
        client_address="127.0.0.1", idempotency_key=None), policy)


def _dispatch(db: psycopg.Connection[Any], job_id: str) -> int:
    row = db.execute("SELECT dispatch_id FROM jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return int(row[0])


def _priorities(db: psycopg.Connection[Any], job_ids: list[str]) -> list[int]:
    return [db.execute("SELECT pj.priority FROM jobs JOIN procrastinate_jobs pj "
                       "ON pj.id = jobs.dispatch_id WHERE jobs.id = %s", (job_id,)
                       ).fetchone()[0]  # type: ignore[index]
            for job_id in job_ids]


def _create(api: ApiClient, website: FakeWebsite, owner: dict[str, str], count: int) -> list[str]:
    return [api.create_analysis(website.url("/"), owner) for _ in range(count)]


def test_a_newcomer_starts_before_a_backlog_with_every_slot_busy(
        make_api: Any, db: psycopg.Connection[Any], website: FakeWebsite) -> None:
    api = make_api()
    workers = Workers(db)
    heavy = new_session()
    backlog = _create(api, website, heavy, 22)
    running = [workers.take(), workers.take()]  # every slot (two) busy with the first two
    assert running == backlog[:2]
    newcomer = api.create_analysis(website.url("/"), new_session())
    # The backlog took turns 0, 1, 2, ...; the last job started was of turn 1, which the
    # newcomer joins (its owner has nothing else active): ahead of the 20 queued.
    assert _priorities(db, [newcomer]) == [-1]
    assert _priorities(db, backlog[2:5]) == [-2, -3, -4]
    assert workers.take() == newcomer
    # then the backlog, in its order
    assert [workers.take() for _ in range(3)] == backlog[2:5]


def test_owners_take_turns_and_each_owner_is_fifo(
        make_api: Any, db: psycopg.Connection[Any], website: FakeWebsite) -> None:
    api = make_api()
    ann, bob, cat = new_session(), new_session(), new_session()
    a = _create(api, website, ann, 3)
    b = _create(api, website, bob, 2)
    c = _create(api, website, cat, 1)
    workers = Workers(db)
    taken = [workers.take() for _ in range(6)]
    assert taken == [a[0], b[0], c[0], a[1], b[1], a[2]]
    assert workers.take() is None


def test_queue_position_is_the_place_in_the_fetch_order(
        make_api: Any, db: psycopg.Connection[Any], website: FakeWebsite) -> None:
    api = make_api()
    ann, bob = new_session(), new_session()
    a = _create(api, website, ann, 3)
    b = _create(api, website, bob, 1)
    # fetch order: a0, b0, a1, a2
    assert [api.status(job, ann)["queuePosition"] for job in a] == [1, 3, 4]
    assert api.status(b[0], bob)["queuePosition"] == 2
    listed = api.http.get("/api/v1/jobs", headers=ann).get_json()["jobs"]
    assert [doc["queuePosition"] for doc in listed] == [4, 3, 1]  # newest first
    workers = Workers(db)
    assert workers.take() == a[0]
    api.settled(db)  # polls may be answered from memory: after the feed saw the claim
    assert api.status(a[0], ann)["queuePosition"] is None  # running
    assert [api.status(job, ann)["queuePosition"] for job in a[1:]] == [2, 3]
    assert api.status(b[0], bob)["queuePosition"] == 1
    workers.finish(a[0])
    api.settled(db)
    assert api.status(a[0], ann)["queuePosition"] is None  # finished


def test_a_finish_or_a_cancel_rewrites_no_dispatch_and_a_retry_queues_last(
        make_api: Any, db: psycopg.Connection[Any], website: FakeWebsite) -> None:
    api = make_api()
    ann, bob = new_session(), new_session()
    a = _create(api, website, ann, 4)
    b = _create(api, website, bob, 3)
    workers = Workers(db)
    assert workers.take() == a[0]
    assert _priorities(db, a[1:]) == [-1, -2, -3]
    # A running job finishes: no dispatch is written (once, each queued one of the owner's
    # was raised a rank), and the order stays.
    assert workers.finish(a[0]) == 0
    assert _priorities(db, a[1:]) == [-1, -2, -3]
    # a queued one is cancelled: the others keep their turns
    assert api.http.post(f"/api/v1/jobs/{a[2]}/cancel", headers=ann).status_code == 200
    assert _priorities(db, [a[1], a[3]]) == [-1, -3]
    assert _priorities(db, b) == [0, -1, -2]
    # a retried job is active again: the turn after its owner's last queued one
    assert api.http.post(f"/api/v1/jobs/{a[2]}/retry", headers=ann).status_code == 200
    assert _priorities(db, [a[1], a[3], a[2]]) == [-1, -3, -4]
    assert [workers.take() for _ in range(6)] == [b[0], a[1], b[1], b[2], a[3], a[2]]


def test_a_claim_or_a_finish_writes_no_other_dispatch(
        make_api: Any, db: psycopg.Connection[Any], website: FakeWebsite) -> None:
    """The cost the re-rank had: every finish of an owner's job updated each of its queued
    dispatches' procrastinate_jobs rows (never a HOT update: priority is in the fetch
    index). Now neither the claim nor the finish writes any."""
    api = make_api()
    ann = new_session()
    jobs = _create(api, website, ann, 6)
    workers = Workers(db)
    for job in jobs[:3]:
        row = db.execute("SELECT id FROM procrastinate_fetch_job_v2(ARRAY['jobs'], %s)",
                         (workers.worker_id,)).fetchone()
        assert row is not None and row[0] == _dispatch(db, job)
        dispatch_id: int = row[0]

        def claim(job: str = job, dispatch_id: int = dispatch_id) -> Any:
            return store.claim_job(db, uuid.UUID(job), dispatch_id, FIRST_STEPS)

        assert _dispatch_rows_updated(db, claim) == 0
    for job in jobs[:3]:  # with queued jobs behind, and (the last) with nothing queued
        assert workers.finish(job) == 0
    assert [workers.take() for _ in range(3)] == jobs[3:]
    assert [workers.finish(job) for job in jobs[3:]] == [0, 0, 0]


def test_positions_are_the_start_order_whichever_job_finishes_first(
        make_api: Any, db: psycopg.Connection[Any], website: FakeWebsite) -> None:
    """A queued job's position is its place in the order in which jobs will start, and
    finishes do not reorder the queue: Bob's first job runs on while Ann's finish one
    after another, and the jobs still start in the order their positions said."""
    api = make_api()
    ann, bob = new_session(), new_session()
    a = _create(api, website, ann, 6)
    b = _create(api, website, bob, 3)
    owners = {**{job: ann for job in a}, **{job: bob for job in b}}
    workers = Workers(db)
    running = [workers.take_one(), workers.take_one()]
    assert running == [a[0], b[0]]
    api.settled(db)
    positions = {job: api.status(job, owners[job])["queuePosition"]
                 for job in [*a[1:], *b[1:]]}
    predicted = sorted(positions, key=lambda job: positions[job])
    assert sorted(positions.values()) == list(range(1, len(positions) + 1))
    started: list[str] = []
    while len(started) < len(predicted):
        # one of Ann's running jobs ends (Bob's first runs on), then the next starts
        workers.finish(next((job for job in running if job in a), running[0]))
        running = [job for job in running if job not in workers.finished]
        api.settled(db)
        for place, job in enumerate(predicted[len(started):], start=1):
            assert api.status(job, owners[job])["queuePosition"] == place
        started.append(workers.take_one())
        running.append(started[-1])
    assert started == predicted


def test_a_newcomer_is_the_next_to_start_across_finishes(
        make_api: Any, db: psycopg.Connection[Any], website: FakeWebsite) -> None:
    """The guarantee users see, turn after turn: with every slot busy with one owner's
    backlog, a job of someone with nothing else active is the next to start, and two
    newcomers start in the order they came, both before the backlog's next job."""
    api = make_api()
    heavy = new_session()
    backlog = _create(api, website, heavy, 16)
    workers = Workers(db)
    running = [workers.take_one(), workers.take_one()]
    assert running == backlog[:2]
    waiting = backlog[2:]
    for round_ in range(3):
        newcomers = [(api.create_analysis(website.url("/"), owner), owner)
                     for owner in (new_session() for _ in range(1 + round_ % 2))]
        api.settled(db)
        for place, (job, owner) in enumerate(newcomers, start=1):
            assert api.status(job, owner)["queuePosition"] == place
        for job, _ in newcomers:
            workers.finish(running.pop(0))
            running.append(workers.take_one())
            assert running[-1] == job
        # then the backlog, in its order, taking a turn in between
        workers.finish(running.pop(0))
        running.append(workers.take_one())
        assert running[-1] == waiting.pop(0)


def test_with_fair_dispatch_off_the_queue_is_fifo(
        make_api: Any, db: psycopg.Connection[Any], website: FakeWebsite) -> None:
    api = make_api(fair=False)
    ann, bob = new_session(), new_session()
    created = _create(api, website, ann, 3) + _create(api, website, bob, 1)
    assert _priorities(db, created) == [0, 0, 0, 0]
    workers = Workers(db)
    assert workers.take() == created[0]
    assert workers.finish(created[0]) == 0
    assert _priorities(db, created[1:]) == [0, 0, 0]
    api.settled(db)
    assert api.status(created[3], bob)["queuePosition"] == 3
    assert [workers.take() for _ in range(3)] == created[1:]


@pytest.mark.usefixtures("fresh_estimates")
def test_the_estimate_of_a_job_behind_a_backlog_includes_the_wait(
        make_api: Any, db: psycopg.Connection[Any], website: FakeWebsite) -> None:
    api = make_api()
    workers = Workers(db)  # a live worker
    alone, owner = new_session(), new_session()
    idle_job = api.create_analysis(website.url("/"), alone)
    idle = api.status(idle_job, alone)
    # a live worker running nothing has a free slot: no wait, just the pipeline (defaults)
    pipeline_s = idle["estimatedTimeRemaining"]
    assert idle["queuePosition"] == 1 and pipeline_s == 40
    assert workers.take() == idle_job
    backlog = _create(api, website, owner, 11)
    assert workers.take() == backlog[0]  # two busy slots, ten queued
    last = api.status(backlog[-1], owner)
    assert last["queuePosition"] == 10
    # Two starts in the window are no rate yet: two busy slots of 40 s runs (no run
    # history: the pipeline's own time) start one job every 20 s; the tenth waits 200 s.
    assert last["estimatedTimeRemaining"] == pytest.approx(pipeline_s + 10 * 20, abs=2)
    first = api.status(backlog[1], owner)
    assert first["queuePosition"] == 1
    assert first["estimatedTimeRemaining"] == pytest.approx(pipeline_s + 20, abs=2)


def test_positions_counted_or_numbered_agree(
        make_api: Any, db: psycopg.Connection[Any], website: FakeWebsite) -> None:
    api = make_api()
    jobs = [job for owner in (new_session() for _ in range(4))
            for job in _create(api, website, owner, 9)]
    dispatches = [_dispatch(db, job) for job in jobs]
    assert len(dispatches) >= store.POSITIONS_RANKED_FROM  # numbered in one pass
    numbered = store.queue_positions(db, dispatches)
    counted = {dispatch: store.queue_positions(db, [dispatch])[dispatch]
               for dispatch in dispatches}  # one at a time: counted
    assert numbered == counted
    assert sorted(numbered.values()) == list(range(1, len(jobs) + 1))


def test_a_new_dispatch_reads_the_queue_head_not_the_whole_backlog(
        db: psycopg.Connection[Any]) -> None:
    """A burst into a queue that was nearly empty when last analysed and when its plans
    were made (as a web process's connection makes them at its first creates; autovacuum
    held off, so no ANALYZE corrects them): the fair turn of an owner with jobs queued
    still reads the queue's head and the owner's own dispatches, not every queued row."""
    owner = "session_burst"
    db.execute("ALTER TABLE procrastinate_jobs SET (autovacuum_enabled = off)")
    db.execute("ALTER TABLE jobs SET (autovacuum_enabled = off)")
    policy = replace(FairUse(), creates_per_address_per_minute=0, max_active_per_session=30)
    for _ in range(10):  # PL/pgSQL plans a statement for the session after five calls
        _create_job(db, owner, policy)
    db.execute("VACUUM ANALYZE procrastinate_jobs")  # the statistics of a nearly empty queue
    _create_job(db, owner, policy)
    db.execute("INSERT INTO procrastinate_jobs (queue_name, task_name, priority, args, status)"
               " SELECT %s, %s, -(20 + n / 10), '{}', 'todo' FROM generate_series(1, 20000) n",
               (store.QUEUE, store.RUN_TASK))
    _create_job(db, owner, policy)  # the owner's creates go on during the burst
    _create_job(db, owner, policy)
    read, turn = _rows_read(db, "procrastinate_jobs", lambda: db.execute(
        "SELECT jobs_dispatch_fair_turn(%s, NULL, %s)", (store.QUEUE, owner)).fetchone())
    assert turn == (13,)  # after its own thirteen (turns 0 to 12), FIFO within the owner
    assert read < 100, read


def test_a_create_reads_its_owners_jobs_not_every_active_one(
        db: psycopg.Connection[Any]) -> None:
    """Statistics taken while the table held finished jobs only (active ones are rare
    between bursts, and autovacuum does not analyse a large table again for a burst of a
    few per cent of it): a create during a burst still counts its owner's unfinished jobs
    and reads its owner's dispatches, not every active job."""
    db.execute("ALTER TABLE jobs SET (autovacuum_enabled = off)")
    db.execute("INSERT INTO jobs (id, type, owner_session_id, input, status, progress,"
               " finished_at) SELECT gen_random_uuid(), 'website-analysis', 'done_' || n,"
               " '{}', 'succeeded', 100, now() FROM generate_series(1, 20000) n")
    db.execute("ANALYZE jobs")
    policy = replace(FairUse(), creates_per_address_per_minute=0)
    for n in range(500):  # the burst, of many owners
        _create_job(db, f"session_burst_{n}", policy)
    # an owner with one job queued
    read, _ = _rows_read(db, "jobs", lambda: _create_job(db, "session_burst_0", policy))
    assert read < 50, read
