"""Worker writes are fenced by the dispatch id, and housekeeping sweeps expired rows:
store functions straight against a real PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from queue_jobs import models
from queue_jobs.config.settings import QueueSettings
from queue_jobs.db import store
from queue_jobs.services import fair_use
from queue_jobs.worker import housekeeping, reaper, tasks
from queue_jobs.worker.app import app as queue_app
from tests.fakes.website import FakeWebsite
from tests.integration.support import ApiClient, ThreadWorker, new_session, wait_until

POST = {"title": "T", "content": "C", "excerpt": "E", "tags": ["t"],
        "seo": {"metaTitle": "M", "metaDescription": "D", "keywords": ["k"]}, "visuals": []}


def claimed_job(api: ApiClient, website: FakeWebsite, db: psycopg.Connection[Any],
                session: dict[str, str]) -> tuple[uuid.UUID, int]:
    """A job running under its current dispatch, as a worker would hold it."""
    job_id = uuid.UUID(api.create_analysis(website.url("/"), session))
    row = db.execute("SELECT dispatch_id FROM jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    assert store.claim_job(db, job_id, row[0], {}) is not None
    return job_id, int(row[0])


def insert_image(db: psycopg.Connection[Any], image_id: uuid.UUID, job_id: uuid.UUID,
                 dispatch_id: int, data: bytes, part: str = "0") -> bool:
    """An image of the images step, as StepInput.image saves it."""
    return store.insert_step_image(db, image_id, job_id, dispatch_id, "images", part,
                                   f"/api/v1/images/{image_id}", "image/png", data, "p")


def step_parts(db: psycopg.Connection[Any], job_id: uuid.UUID) -> Any:
    row = db.execute("SELECT step_parts FROM jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return row[0]


def test_a_run_that_lost_its_job_writes_nothing(
        api: ApiClient, website: FakeWebsite, db: psycopg.Connection[Any]) -> None:
    session = new_session()
    job_id, dispatch_id = claimed_job(api, website, db, session)
    organization_id = uuid.uuid4()
    stale = dispatch_id + 1000
    assert not store.insert_organization(db, organization_id, job_id, stale, "Acme",
                                         "https://a.example/", {})
    assert not insert_image(db, uuid.uuid4(), job_id, stale, b"x")
    assert store.insert_organization(db, organization_id, job_id, dispatch_id, "Acme",
                                     "https://a.example/", {})
    assert store.insert_post(db, uuid.uuid4(), organization_id, job_id, stale, POST,
                             "draft") is None
    counts = db.execute("SELECT (SELECT count(*) FROM images), (SELECT count(*) FROM posts), "
                        "(SELECT count(*) FROM organizations)").fetchone()
    assert counts == (0, 0, 1)
    assert step_parts(db, job_id) == {}  # nor the part that would have named the image

    # The current run saves once, however often it repeats the step, and the job's images
    # move to the post. An image and the part that names it are saved together.
    image_id = uuid.uuid4()
    assert insert_image(db, image_id, job_id, dispatch_id, b"x")
    assert step_parts(db, job_id) == {"images": {"0": f"/api/v1/images/{image_id}"}}
    post_id = uuid.uuid4()
    first = store.insert_post(db, post_id, organization_id, job_id, dispatch_id, POST, "draft")
    again = store.insert_post(db, post_id, organization_id, job_id, dispatch_id,
                              {**POST, "title": "Rewritten"}, "published")
    assert first is not None and again == first  # the first save stands
    assert db.execute("SELECT post_id, job_id FROM images").fetchall() == [(post_id, None)]

    # A cancel requested through the API fences the run at once, before the watchdog has
    # written the final state: not even the current dispatch may save or succeed.
    owner = models.Owner(None, session["x-session-id"])
    version = db.execute("SELECT version FROM jobs WHERE id = %s", (job_id,)).fetchone()
    assert version is not None
    assert store.request_running_job_cancel(db, job_id, owner) == (dispatch_id, version[0] + 1)
    assert store.insert_post(db, uuid.uuid4(), organization_id, job_id, dispatch_id, POST,
                             "draft") is None
    assert not insert_image(db, uuid.uuid4(), job_id, dispatch_id, b"x", part="1")
    assert list(step_parts(db, job_id)["images"]) == ["0"]
    assert not store.succeed_job(db, job_id, dispatch_id, {"success": True})
    assert not store.checkpoint_steps(db, job_id, dispatch_id, [
        {"step": "analyze", "output": {}, "duration_ms": 1, "usage": []}], 30)
    assert db.execute("SELECT count(*) FROM posts").fetchone() == (1,)


def test_housekeeping_sweeps_only_expired_rows(
        api: ApiClient, website: FakeWebsite, db: psycopg.Connection[Any], db_url: str) -> None:
    session = new_session()
    for key in ("old", "fresh"):
        response = api.http.post("/api/v1/jobs/website-analysis", json={"url": website.url("/")},
                                 headers={**session, "Idempotency-Key": key})
        assert response.status_code == 201
    db.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 second' "
               "WHERE key = 'old'")
    db.execute("INSERT INTO rate_limits (key, window_started_at, hits, expires_at) VALUES "
               "('login-email:old@example.com', now() - interval '1 hour', 5, "
               " now() - interval '45 minutes'), "
               "('login-email:older@example.com', now() - interval '2 hour', 5, "
               " now() - interval '105 minutes'), "
               "('login-email:new@example.com', now(), 1, now() + interval '15 minutes')")

    with ConnectionPool(db_url, min_size=1, max_size=1) as pool:
        report = housekeeping.sweep(pool, retention_days=30, batch=1)  # one row at a time

    assert report == housekeeping.SweepReport(jobs=0, idempotency_keys=1, rate_limits=2)
    assert db.execute("SELECT key FROM idempotency_keys").fetchall() == [("fresh",)]
    # The API's own counter for job creations (fresh) stays, as does the fresh login window.
    assert {row[0] for row in db.execute("SELECT key FROM rate_limits")} == {
        "login-email:new@example.com", "create-address:127.0.0.1"}


def test_retention_deletes_old_finished_jobs_but_keeps_saved_posts(
        api: ApiClient, website: FakeWebsite, db: psycopg.Connection[Any], db_url: str) -> None:
    session = new_session()
    old_job, dispatch_id = claimed_job(api, website, db, session)
    organization_id = uuid.uuid4()
    assert store.insert_organization(db, organization_id, old_job, dispatch_id, "Acme",
                                     "https://a.example/", {})
    job_image, post_image, post_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert insert_image(db, post_image, old_job, dispatch_id, b"p")
    assert store.insert_post(db, post_id, organization_id, old_job, dispatch_id, POST, "draft")
    assert insert_image(db, job_image, old_job, dispatch_id, b"j", part="1")
    assert store.succeed_job(db, old_job, dispatch_id, {"success": True})
    recent_job = uuid.UUID(api.create_analysis(website.url("/"), session))
    still_running, _ = claimed_job(api, website, db, session)
    db.execute("UPDATE jobs SET finished_at = now() - interval '31 days', "
               "created_at = now() - interval '31 days' WHERE id = %s", (old_job,))
    db.execute("UPDATE jobs SET created_at = now() - interval '40 days' WHERE id = %s",
               (still_running,))

    with ConnectionPool(db_url, min_size=1, max_size=1) as pool:
        report = housekeeping.sweep(pool, retention_days=30, batch=1)

    assert report.jobs == 1
    remaining = {row[0] for row in db.execute("SELECT id FROM jobs")}
    assert remaining == {recent_job, still_running}  # active jobs are never deleted
    # The job's own image went with it; the saved post, its image and the organization stay.
    assert {row[0] for row in db.execute("SELECT id FROM images")} == {post_image}
    assert db.execute("SELECT job_id FROM posts WHERE id = %s", (post_id,)).fetchone() == (
        None,)
    assert db.execute("SELECT count(*) FROM organizations").fetchone() == (1,)


def test_housekeeping_prunes_procrastinate_rows_of_ended_dispatches(
        db: psycopg.Connection[Any], db_url: str) -> None:
    def dispatch(status: str, days_old: int) -> int:
        row = db.execute("INSERT INTO procrastinate_jobs (queue_name, task_name, args, status) "
                         "VALUES ('jobs', 'run_job', '{}', %s) RETURNING id",
                         (status,)).fetchone()
        assert row is not None
        db.execute("INSERT INTO procrastinate_events (job_id, type, at) "
                   "VALUES (%s, 'deferred', now() - make_interval(days => %s))",
                   (row[0], days_old))
        db.execute("UPDATE procrastinate_events SET at = now() - make_interval(days => %s) "
                   "WHERE job_id = %s", (days_old, row[0]))
        return int(row[0])

    old = {status: dispatch(status, 2) for status in ("cancelled", "failed", "aborted")}
    kept = {"recent": dispatch("failed", 0), "todo": dispatch("todo", 2),
            "doing": dispatch("doing", 2), "periodic": dispatch("failed", 2)}
    db.execute("INSERT INTO procrastinate_periodic_defers (task_name, defer_timestamp, job_id) "
               "VALUES ('reap_lost_jobs', 1, %s)", (kept["periodic"],))

    with ConnectionPool(db_url, min_size=1, max_size=1) as pool:
        report = housekeeping.sweep(pool, retention_days=30, batch=2)

    assert report.dispatches == len(old)
    remaining = {row[0] for row in db.execute("SELECT id FROM procrastinate_jobs")}
    assert remaining == set(kept.values())
    events = {row[0] for row in db.execute("SELECT DISTINCT job_id FROM procrastinate_events")}
    assert events == set(kept.values())  # the pruned rows' events went with them


def test_the_hourly_sweep_runs_as_a_procrastinate_task(
        settings: QueueSettings, db: psycopg.Connection[Any]) -> None:
    periodic = {task.periodic_id: task for task in queue_app.periodic_registry.periodic_tasks
                .values()}
    assert periodic["housekeeping"].cron == "23 * * * *"
    assert periodic["housekeeping"].task is tasks.sweep_expired_rows
    db.execute("INSERT INTO rate_limits (key, window_started_at, hits, expires_at) "
               "VALUES ('old', now() - interval '1 hour', 1, now() - interval '1 minute')")
    # Deferred as the periodic deferrer would (with its timestamp argument).
    row = db.execute("SELECT (procrastinate_defer_jobs_v1(ARRAY[ROW('maintenance', "
                     "'sweep_expired_rows', 0, NULL, NULL, '{\"timestamp\": 0}', NULL)"
                     "::procrastinate_job_to_defer_v1]))[1]").fetchone()
    assert row is not None

    def swept() -> bool:
        status = db.execute("SELECT status::text FROM procrastinate_jobs WHERE id = %s",
                            (row[0],)).fetchone()
        finished = status is None or status[0] == "succeeded"  # successful jobs are deleted
        return finished and db.execute("SELECT count(*) FROM rate_limits").fetchone() == (0,)

    with ThreadWorker(settings, concurrency=1, queues=("maintenance",)):
        wait_until(swept, timeout=15, message="the sweep task to run")


def test_an_in_request_run_whose_process_died_is_failed_by_the_reaper(
        db: psycopg.Connection[Any], db_url: str) -> None:
    owner = models.Owner(None, "sess_dead_request")
    job_ids = []
    for _ in range(2):  # created as a deprecated synchronous call does, then never run
        job_id = uuid.uuid4()
        store.create_job(db, job_id, "website-analysis", owner, {"url": "x"},
                         fair_use.create_limits(fair_use.FairUse(), owner, "test"), inline=True)
        job_ids.append(job_id)
    store.request_running_job_cancel(db, job_ids[1], owner)
    with ConnectionPool(db_url, min_size=1, max_size=2) as pool:
        assert reaper.reap(pool, stalled_after_s=3, max_lost_runs=3,
                           job_timeout_s=600).failed == []  # still beating (just created)
        db.execute("UPDATE jobs SET inline_heartbeat_at = now() - interval '1 minute'")
        report = reaper.reap(pool, stalled_after_s=3, max_lost_runs=3, job_timeout_s=600)
    assert sorted(report.failed) == sorted(str(job_id) for job_id in job_ids)
    assert report.redispatched == []  # a request cannot be resumed by a worker
    codes = dict(db.execute("SELECT id, error_code FROM jobs").fetchall())
    assert codes == {job_ids[0]: "WORKER_LOST", job_ids[1]: "CANCELLED"}


def test_a_refused_create_writes_nothing(db: psycopg.Connection[Any]) -> None:
    address_key = f"create-address:test-{uuid.uuid4()}"
    limits = models.CreateLimits(max_active=1, address_key=address_key, address_limit=2,
                                address_window_s=60)

    def create(session: str) -> models.CreateOutcome:
        return store.create_job(db, uuid.uuid4(), "website-analysis",
                                models.Owner(None, session), {"url": "x"}, limits)

    first, second = new_session()["x-session-id"], new_session()["x-session-id"]
    assert create(first).dispatch_id is not None
    assert create(first) == models.CreateOutcome("active_jobs", None, None)  # one active
    assert create(second).dispatch_id is not None  # the address's second create
    refused = create(new_session()["x-session-id"])
    assert refused.refused == "address_rate" and refused.dispatch_id is None
    assert refused.retry_after_s is not None and 1 <= refused.retry_after_s <= 60
    jobs = db.execute("SELECT count(*) FROM jobs WHERE owner_session_id = ANY(%s)",
                      ([first, second],)).fetchone()
    hits = db.execute("SELECT hits FROM rate_limits WHERE key = %s", (address_key,)).fetchone()
    assert jobs == (2,) and hits == (2,)  # neither refusal counted nor created anything
