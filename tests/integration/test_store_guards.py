"""Worker writes are fenced by the dispatch id, and housekeeping sweeps expired rows:
store functions straight against a real PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from queue_jobs import housekeeping, store
from tests.fakes.website import FakeWebsite
from tests.integration.support import ApiClient, new_session

POST = {"title": "T", "content": "C", "excerpt": "E", "tags": ["t"],
        "seo": {"metaTitle": "M", "metaDescription": "D", "keywords": ["k"]}, "visuals": []}


def claimed_job(api: ApiClient, website: FakeWebsite,
                db: psycopg.Connection[Any]) -> tuple[uuid.UUID, int]:
    """A job running under its current dispatch, as a worker would hold it."""
    job_id = uuid.UUID(api.create_analysis(website.url("/"), new_session()))
    row = db.execute("SELECT dispatch_id FROM jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    assert store.claim_job(db, job_id, row[0]) is not None
    return job_id, int(row[0])


def test_a_run_that_lost_its_job_writes_nothing(
        api: ApiClient, website: FakeWebsite, db: psycopg.Connection[Any]) -> None:
    job_id, dispatch_id = claimed_job(api, website, db)
    organization_id = uuid.uuid4()
    stale = dispatch_id + 1000
    assert not store.insert_organization(db, organization_id, job_id, stale, "Acme",
                                         "https://a.example/", {})
    assert not store.insert_image(db, uuid.uuid4(), job_id, stale, "image/png", b"x", "p")
    assert store.insert_organization(db, organization_id, job_id, dispatch_id, "Acme",
                                     "https://a.example/", {})
    assert store.insert_post(db, uuid.uuid4(), organization_id, job_id, stale, POST,
                             "draft") is None
    counts = db.execute("SELECT (SELECT count(*) FROM images), (SELECT count(*) FROM posts), "
                        "(SELECT count(*) FROM organizations)").fetchone()
    assert counts == (0, 0, 1)

    # The current run saves once, however often it repeats the step, and the job's images
    # move to the post.
    assert store.insert_image(db, uuid.uuid4(), job_id, dispatch_id, "image/png", b"x", "p")
    post_id = uuid.uuid4()
    first = store.insert_post(db, post_id, organization_id, job_id, dispatch_id, POST, "draft")
    again = store.insert_post(db, post_id, organization_id, job_id, dispatch_id, POST, "draft")
    assert first is not None and first == again
    assert db.execute("SELECT post_id, job_id FROM images").fetchall() == [(post_id, None)]

    # Once cancelled (no longer running), not even the current dispatch may write.
    db.execute("UPDATE jobs SET status = 'failed' WHERE id = %s", (job_id,))
    assert store.insert_post(db, uuid.uuid4(), organization_id, job_id, dispatch_id, POST,
                             "draft") is None


def test_housekeeping_sweeps_only_expired_rows(
        api: ApiClient, website: FakeWebsite, db: psycopg.Connection[Any], db_url: str) -> None:
    session = new_session()
    for key in ("old", "fresh"):
        response = api.http.post("/api/v1/jobs/website-analysis", json={"url": website.url("/")},
                                 headers={**session, "Idempotency-Key": key})
        assert response.status_code == 201
    db.execute("UPDATE idempotency_keys SET created_at = now() - interval '2 days' "
               "WHERE key = 'old'")
    db.execute("INSERT INTO rate_limits (key, window_started_at, hits) VALUES "
               "('login-email:old@example.com', now() - interval '25 hours', 5), "
               "('login-email:new@example.com', now(), 1)")

    with ConnectionPool(db_url, min_size=1, max_size=1) as pool:
        report = housekeeping.sweep(pool, idempotency_window_s=24 * 3600)

    assert report == housekeeping.SweepReport(idempotency_keys=1, rate_limits=1)
    assert db.execute("SELECT key FROM idempotency_keys").fetchall() == [("fresh",)]
    # The API's own counter for job creations (fresh) stays, as does the fresh login window.
    assert {row[0] for row in db.execute("SELECT key FROM rate_limits")} == {
        "login-email:new@example.com", "create-address:127.0.0.1"}
