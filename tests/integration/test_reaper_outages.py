"""The reaper counts a worker's silence only over time in which the database was up, and
charges a lost run only when the worker fell silent then: store and reaper against a real
PostgreSQL, with workers' heartbeats placed before or after the server's start."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from queue_jobs import models
from queue_jobs.db import store
from queue_jobs.services import fair_use
from queue_jobs.worker import reaper
from tests.integration.support import wait_until

STALLED_AFTER_S = 2.0


@pytest.fixture(autouse=True)
def server_up_long_enough(db: psycopg.Connection[Any]) -> None:
    """The test server may have just started: silence after its start must be able to
    exceed STALLED_AFTER_S."""
    def long_enough() -> bool:
        row = db.execute("SELECT now() - pg_postmaster_start_time() > make_interval("
                         "secs => %s)", (STALLED_AFTER_S * 2,)).fetchone()
        return bool(row and row[0])

    wait_until(long_enough, timeout=15, interval=0.2, message="the server's uptime")


def _running_on_a_worker(db: psycopg.Connection[Any], heartbeat_sql: str,
                         claimed: bool = True) -> tuple[uuid.UUID, int, int]:
    """A job whose dispatch is 'doing' on a worker whose last heartbeat is `heartbeat_sql`;
    claimed: the run had started (the jobs row says running)."""
    owner = models.Owner(None, f"sess_{uuid.uuid4().hex}")
    job_id = uuid.uuid4()
    created = store.create_job(db, job_id, "website-analysis", owner, {"url": "x"},
                               fair_use.create_limits(fair_use.FairUse(), owner, "test"))
    assert created.dispatch_id is not None
    worker = db.execute(f"INSERT INTO procrastinate_workers (last_heartbeat) "
                        f"VALUES ({heartbeat_sql}) RETURNING id").fetchone()
    assert worker is not None
    db.execute("UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s WHERE id = %s",
               (worker[0], created.dispatch_id))
    if claimed:
        assert store.claim_job(db, job_id, created.dispatch_id, {}) is not None
    return job_id, created.dispatch_id, int(worker[0])


def _row(db: psycopg.Connection[Any], job_id: uuid.UUID) -> tuple[Any, ...]:
    row = db.execute("SELECT status, dispatch_id, lost_runs FROM jobs WHERE id = %s",
                     (job_id,)).fetchone()
    assert row is not None
    return tuple(row)


def _reap(db_url: str, up_for_s: float | None = None) -> reaper.ReapReport:
    with ConnectionPool(db_url, min_size=1, max_size=2) as pool:
        return reaper.reap(pool, stalled_after_s=STALLED_AFTER_S, max_lost_runs=3,
                           job_timeout_s=600, up_for_s=up_for_s)


def test_a_worker_silent_while_the_database_was_up_is_lost_and_charged(
        db: psycopg.Connection[Any], db_url: str) -> None:
    # Beat after the server started, silent since: a crash or a hang.
    job_id, dispatch_id, worker_id = _running_on_a_worker(
        db, "greatest(now() - interval '1 minute', pg_postmaster_start_time())")
    report = _reap(db_url)
    assert report.redispatched == [str(job_id)] and report.uncharged == []
    status, new_dispatch, lost_runs = _row(db, job_id)
    assert (status, lost_runs) == ("queued", 1) and new_dispatch != dispatch_id
    # Its row goes once its run is recovered.
    assert report.pruned_workers == 1
    assert db.execute("SELECT count(*) FROM procrastinate_workers WHERE id = %s",
                      (worker_id,)).fetchone() == (0,)


def test_silence_that_began_before_the_server_started_is_not_charged(
        db: psycopg.Connection[Any], db_url: str) -> None:
    # Last heard of before the server's start: it went away while the database was down
    # (a shutdown that could not hand its run back), so the job is not to blame. Silence is
    # counted from the server's start, which here is long enough ago.
    job_id, dispatch_id, _ = _running_on_a_worker(
        db, "pg_postmaster_start_time() - interval '1 minute'")
    report = _reap(db_url)
    assert report.redispatched == [str(job_id)] and report.uncharged == [str(job_id)]
    status, new_dispatch, lost_runs = _row(db, job_id)
    assert (status, lost_runs) == ("queued", 0) and new_dispatch != dispatch_id


def test_a_worker_that_never_started_its_run_is_not_charged(
        db: psycopg.Connection[Any], db_url: str) -> None:
    # A fetch that went through as the worker stopped: the dispatch is 'doing', the job was
    # never claimed.
    job_id, _, _ = _running_on_a_worker(
        db, "greatest(now() - interval '1 minute', pg_postmaster_start_time())", claimed=False)
    report = _reap(db_url)
    assert report.uncharged == [str(job_id)]
    assert _row(db, job_id)[2] == 0


def test_after_this_workers_reconnection_others_get_time_to_reconnect(
        db: psycopg.Connection[Any], db_url: str) -> None:
    # The reaper's own worker reconnected 1 s ago (an outage the server did not restart
    # for): a worker silent for a minute is given STALLED_AFTER_S from then to beat.
    job_id, dispatch_id, worker_id = _running_on_a_worker(
        db, "greatest(now() - interval '1 minute', pg_postmaster_start_time())")
    report = _reap(db_url, up_for_s=STALLED_AFTER_S / 2)
    assert report.redispatched == [] and report.pruned_workers == 0
    assert _row(db, job_id) == ("running", dispatch_id, 0)
    # Once that time has passed, the silence counts, but began before the reconnection:
    # not charged.
    report = _reap(db_url, up_for_s=STALLED_AFTER_S * 2)
    assert report.uncharged == [str(job_id)] and report.pruned_workers == 1
    assert _row(db, job_id)[2] == 0
    assert db.execute("SELECT count(*) FROM procrastinate_workers WHERE id = %s",
                      (worker_id,)).fetchone() == (0,)


def test_a_live_worker_is_neither_reaped_nor_pruned(
        db: psycopg.Connection[Any], db_url: str) -> None:
    job_id, dispatch_id, _ = _running_on_a_worker(db, "now()")
    idle = db.execute("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id")
    assert idle.fetchone() is not None
    report = _reap(db_url)
    assert report.redispatched == [] and report.pruned_workers == 0
    assert _row(db, job_id) == ("running", dispatch_id, 0)
