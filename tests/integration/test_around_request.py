"""What every answer gets around its view (webapp.hooks.around_request): a request id, and CORS
headers for allowed origins only, on errors and preflights too; and what static files get
from their wrapped view (webapp.views.demo), on a 304 as well."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest

from tests.fakes.website import FakeWebsite
from tests.integration.conftest import TEST_JWT_SECRET
from tests.integration.support import ApiClient, ThreadWorker, new_session
from webapp import create_app

APP_ORIGIN = "https://app.example"


@pytest.fixture
def cors_api(db_url: str) -> Iterator[ApiClient]:
    client = ApiClient(create_app({"database_url": db_url, "jwt_secret_key": TEST_JWT_SECRET,
                                   "cors_origins": (APP_ORIGIN,)}))
    yield client
    client.close()


def test_an_allowed_origin_gets_cors_headers_on_answers_errors_and_preflights(
        cors_api: ApiClient) -> None:
    origin = {"Origin": APP_ORIGIN}
    ok = cors_api.http.get("/healthz", headers=origin)
    missing = cors_api.http.get(f"/api/v1/jobs/{uuid.uuid4()}/status",
                                headers={**origin, **new_session()})
    preflight = cors_api.http.options(
        "/api/v1/jobs/website-analysis",
        headers={**origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type, x-session-id"})
    assert (ok.status_code, missing.status_code, preflight.status_code) == (200, 404, 200)
    for response in (ok, missing, preflight):
        assert response.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
        assert "x-session-id" in response.headers["Access-Control-Allow-Headers"]
        assert "ETag" in response.headers["Access-Control-Expose-Headers"]
        assert "Origin" in response.headers["Vary"]
        assert len(response.headers["X-Request-Id"]) == 32


def test_another_origin_gets_no_cors_headers(cors_api: ApiClient) -> None:
    response = cors_api.http.get("/healthz", headers={"Origin": "https://other.example"})
    assert response.status_code == 200
    assert not [name for name, _ in response.headers.items() if name.startswith("Access-Control")]
    assert response.headers["X-Request-Id"]


def test_each_answer_has_its_own_request_id_unless_the_caller_sent_one(
        api: ApiClient) -> None:
    first, second = (api.http.get("/healthz").headers["X-Request-Id"] for _ in range(2))
    assert first != second
    given = api.http.get("/healthz", headers={"X-Request-Id": "edge-7f3a.1"})
    assert given.headers["X-Request-Id"] == "edge-7f3a.1"
    odd = api.http.get("/healthz", headers={"X-Request-Id": "no spaces or ; please"})
    assert len(odd.headers["X-Request-Id"]) == 32  # not echoed: a fresh one


def test_request_ids_made_here_are_unique_hex_of_32(api: ApiClient) -> None:
    made = {api.http.get("/healthz").headers["X-Request-Id"] for _ in range(50)}
    assert len(made) == 50
    assert all(len(made_id) == 32 and int(made_id, 16) >= 0 for made_id in made)


def test_an_answered_status_poll_logs_its_line_at_debug_and_a_failed_one_at_info(
        api: ApiClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="webapp.request")
    session = new_session()
    job_id = api.create_analysis("https://example.com/", session)
    url = f"/api/v1/jobs/{job_id}/status"
    first = api.http.get(url, headers=session)
    again = api.http.get(url, headers={**session, "If-None-Match": first.headers["ETag"]})
    missing = api.http.get(f"/api/v1/jobs/{uuid.uuid4()}/status", headers=session)
    assert (first.status_code, again.status_code, missing.status_code) == (200, 304, 404)
    logged = [(record.levelno, record.__dict__["route"], record.__dict__["status"])
              for record in caplog.records if record.name == "webapp.request"]
    route = "/api/v1/jobs/<job_id>/status"
    assert logged == [(logging.INFO, "/api/v1/jobs/website-analysis", 201),
                      (logging.DEBUG, route, 200), (logging.DEBUG, route, 304),
                      (logging.INFO, route, 404)]


def test_a_static_file_answered_304_or_206_keeps_its_headers(api: ApiClient) -> None:
    first = api.http.get("/static/index.html")
    again = api.http.get("/static/index.html",
                         headers={"If-None-Match": first.headers["ETag"]})
    part = api.http.get("/static/index.html", headers={"Range": "bytes=0-9"})
    assert (first.status_code, again.status_code, part.status_code) == (200, 304, 206)
    for response in (first, again, part):
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        response.close()


def test_a_status_poll_compares_each_of_its_tags_whole(
        api: ApiClient, worker: ThreadWorker, website: FakeWebsite) -> None:
    """If-None-Match tags reach the database as one space-separated text: a tag with a
    space in it, even one that holds ours, is not ours (and the result is not left out)."""
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    done = api.wait_for_status(job_id, session, {"succeeded", "failed"}, timeout=30)
    assert done["status"] == "succeeded" and done["result"], done
    url = f"/api/v1/jobs/{job_id}/status"
    whole = api.http.get(url, headers=session)
    etag, inner = whole.headers["ETag"], whole.headers["ETag"].strip('"')
    for tags, status, body in ((f'"x {inner}"', 200, whole.data),
                               (f'"x {inner}", "{inner} y"', 200, whole.data),
                               (f'"x {inner}", {etag}', 304, b"")):
        answer = api.http.get(url, headers={**session, "If-None-Match": tags})
        assert (answer.status_code, answer.data) == (status, body), tags
