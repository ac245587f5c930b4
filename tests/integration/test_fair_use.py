"""Fair use: active-job limits per owner, job creations per address, Idempotency-Key."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from werkzeug.test import TestResponse

from queue_jobs.services.fair_use import FairUse
from tests.fakes.website import FakeWebsite
from tests.integration.conftest import TEST_JWT_SECRET
from tests.integration.support import ApiClient, new_session
from webapp import create_app

CREATE = "/api/v1/jobs/website-analysis"


def post_job(api: ApiClient, url: str, headers: dict[str, str]) -> TestResponse:
    return api.http.post(CREATE, json={"url": url}, headers=headers)


def assert_rate_limited(response: TestResponse) -> None:
    assert response.status_code == 429, response.get_json()
    assert response.get_json()["errorCode"] == "RATE_LIMITED"
    assert 1 <= int(response.headers["Retry-After"]) <= 3600


@pytest.fixture
def limited_api(db_url: str) -> Iterator[Any]:
    """An API whose fair-use policy the test chooses."""
    clients: list[ApiClient] = []

    def make(**policy: Any) -> ApiClient:
        client = ApiClient(create_app({"database_url": db_url, "jwt_secret_key": TEST_JWT_SECRET,
                                       "fair_use": replace(FairUse(), **policy)}))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_a_session_may_have_five_active_jobs(api: ApiClient, website: FakeWebsite) -> None:
    session = new_session()
    job_ids = [api.create_analysis(website.url("/"), session) for _ in range(5)]
    assert_rate_limited(post_job(api, website.url("/"), session))
    # Other owners are not affected.
    assert post_job(api, website.url("/"), new_session()).status_code == 201
    # A finished (here: cancelled) job frees a place.
    assert api.http.post(f"/api/v1/jobs/{job_ids[0]}/cancel", headers=session).status_code == 200
    assert post_job(api, website.url("/"), session).status_code == 201
    assert_rate_limited(post_job(api, website.url("/"), session))


def test_a_user_may_have_twenty_active_jobs(api: ApiClient, website: FakeWebsite) -> None:
    user = api.token_for()
    for _ in range(20):
        api.create_analysis(website.url("/"), user)
    assert_rate_limited(post_job(api, website.url("/"), user))
    # The same user's session id does not open a second allowance: the job would be the user's.
    assert_rate_limited(post_job(api, website.url("/"), {**user, **new_session()}))


def test_retrying_counts_against_the_limit(limited_api: Any, website: FakeWebsite) -> None:
    api = limited_api(max_active_per_session=2)
    session = new_session()
    first = api.create_analysis(website.url("/"), session)
    api.http.post(f"/api/v1/jobs/{first}/cancel", headers=session)
    api.create_analysis(website.url("/"), session)
    api.create_analysis(website.url("/"), session)
    assert_rate_limited(api.http.post(f"/api/v1/jobs/{first}/retry", headers=session))
    assert api.status(first, session)["status"] == "failed"  # untouched


def test_concurrent_creates_cannot_race_past_the_limit(
        api: ApiClient, website: FakeWebsite, db: psycopg.Connection[Any]) -> None:
    session = new_session()

    def create(_: int) -> int:
        client = api.app.test_client()
        return client.post(CREATE, json={"url": website.url("/")}, headers=session).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(create, range(12)))
    assert statuses == [201] * 5 + [429] * 7
    assert db.execute("SELECT count(*) FROM jobs").fetchone() == (5,)


def test_job_creations_per_address_are_limited(limited_api: Any, website: FakeWebsite) -> None:
    api = limited_api(creates_per_address_per_minute=3)
    for _ in range(3):
        api.create_analysis(website.url("/"), new_session())
    refused = post_job(api, website.url("/"), new_session())
    assert_rate_limited(refused)
    assert 50 <= int(refused.headers["Retry-After"]) <= 60


def test_an_idempotency_key_returns_the_first_job(
        api: ApiClient, website: FakeWebsite, db: psycopg.Connection[Any]) -> None:
    session = new_session()
    keyed = {**session, "Idempotency-Key": "order-42"}
    first = post_job(api, website.url("/"), keyed)
    again = post_job(api, website.url("/"), keyed)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert db.execute("SELECT count(*) FROM jobs").fetchone() == (1,)

    # Another owner's key is another key.
    other = post_job(api, website.url("/"), {**new_session(), "Idempotency-Key": "order-42"})
    assert other.status_code == 201 and other.get_json() != first.get_json()
    # The same key with a different request is a client bug, not a replay.
    changed = post_job(api, website.url("/demo"), keyed)
    assert changed.status_code == 422
    assert changed.get_json()["errorCode"] == "IDEMPOTENCY_KEY_REUSED"
    # Without a key, the same request makes a new job.
    assert post_job(api, website.url("/"), session).get_json() != first.get_json()


def test_a_replay_is_answered_even_at_the_limit(api: ApiClient, website: FakeWebsite) -> None:
    session = new_session()
    keyed = {**session, "Idempotency-Key": "k-1"}
    first = post_job(api, website.url("/"), keyed).get_json()
    for _ in range(4):
        api.create_analysis(website.url("/"), session)
    assert_rate_limited(post_job(api, website.url("/"), session))
    assert post_job(api, website.url("/"), keyed).get_json() == first


def test_an_idempotency_key_expires_after_its_window(
        api: ApiClient, website: FakeWebsite, db: psycopg.Connection[Any]) -> None:
    keyed = {**new_session(), "Idempotency-Key": "daily-report"}
    first = post_job(api, website.url("/"), keyed).get_json()
    db.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")
    later = post_job(api, website.url("/"), keyed)
    assert later.status_code == 201 and later.get_json() != first
    assert post_job(api, website.url("/"), keyed).get_json() == later.get_json()


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "two words"])
def test_a_malformed_idempotency_key_is_a_validation_error(
        api: ApiClient, website: FakeWebsite, key: str) -> None:
    response = post_job(api, website.url("/"), {**new_session(), "Idempotency-Key": key})
    assert response.status_code == 400
    assert set(response.get_json()["fields"]) == {"Idempotency-Key"}


def test_a_retry_counts_against_the_jobs_owner_not_the_caller(
        api: ApiClient, website: FakeWebsite) -> None:
    session = new_session()
    first = api.create_analysis(website.url("/"), session)
    api.http.post(f"/api/v1/jobs/{first}/cancel", headers=session)
    for _ in range(5):
        api.create_analysis(website.url("/"), session)
    # The session's job stays the session's, whoever asks for the retry.
    with_user = {**api.token_for(), **session}
    assert_rate_limited(api.http.post(f"/api/v1/jobs/{first}/retry", headers=with_user))
