"""Identity, ownership and every validation error answer the contract's JSON envelope."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from werkzeug.test import TestResponse

from tests.fakes.website import FakeWebsite
from tests.integration.support import ApiClient, new_session

CREATE = "/api/v1/jobs/website-analysis"


def assert_error(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.data
    body = response.get_json()
    assert body["errorCode"] == code and body["error"], body
    return dict(body)


def test_no_identity_is_401(api: ApiClient) -> None:
    assert_error(api.http.post(CREATE, json={"url": "https://a.example/"}), 401,
                 "AUTH_REQUIRED")
    assert_error(api.http.get("/api/v1/jobs"), 401, "AUTH_REQUIRED")


@pytest.mark.parametrize("session_id", ["short", "x" * 129, "has space 123", "semi;colon12"])
def test_malformed_session_is_401(api: ApiClient, session_id: str) -> None:
    assert_error(api.http.post(CREATE, json={"url": "https://a.example/"},
                               headers={"x-session-id": session_id}), 401, "SESSION_INVALID")


def test_bad_or_expired_token_is_401_even_with_a_session(api: ApiClient) -> None:
    session = new_session()
    forged = jwt.encode({"sub": str(uuid.uuid4()), "type": "access"},
                        "a-wrong-key-that-is-also-long-enough-for-hs256", algorithm="HS256")
    for headers in ({"Authorization": f"Bearer {forged}"},
                    {"Authorization": "Bearer not-a-token"},
                    {"Authorization": "Basic abc"}):
        assert_error(api.http.post(CREATE, json={"url": "https://a.example/"},
                                   headers={**headers, **session}), 401, "TOKEN_INVALID")
    expired = api.token_for(expires=timedelta(seconds=-5))
    assert_error(api.http.get("/api/v1/jobs", headers={**expired, **session}), 401,
                 "TOKEN_EXPIRED")


@pytest.mark.parametrize(("body", "field"), [
    ({}, "url"),
    ({"url": ""}, "url"),
    ({"url": 42}, "url"),
    ({"url": "ftp://example.com/"}, "url"),
    ({"url": "javascript:alert(1)"}, "url"),
    ({"url": "https://"}, "url"),
    ({"url": "https://example.com/" + "a" * 2048}, "url"),
    ({"url": "https://example.com/", "urll": "x"}, "urll"),
    ({"url": "https://example.com/\u0000"}, "url"),  # PostgreSQL text cannot hold NUL
    ({"url": "https://example.com/\ud800"}, "url"),  # nor UTF-8 a lone surrogate
])
def test_invalid_fields_are_400_with_fields(api: ApiClient, body: dict, field: str) -> None:
    body_json = assert_error(api.http.post(CREATE, json=body, headers=new_session()), 400,
                             "VALIDATION_ERROR")
    assert field in body_json["fields"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\"text\"", b"",
                                 b'{"url": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"])
def test_unusable_bodies_are_400(api: ApiClient, raw: bytes) -> None:
    response = api.http.post(CREATE, data=raw, content_type="application/json",
                             headers=new_session())
    assert_error(response, 400, "VALIDATION_ERROR")


def test_body_over_one_mib_is_413(api: ApiClient) -> None:
    response = api.http.post(CREATE, data=b"{\"url\": \"" + b"a" * (1024 * 1024) + b"\"}",
                             content_type="application/json", headers=new_session())
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_list_query_is_validated(api: ApiClient) -> None:
    session = new_session()
    for query in ("status=done", "limit=0", "limit=101", "limit=abc", "sort=asc"):
        assert_error(api.http.get(f"/api/v1/jobs?{query}", headers=session), 400,
                     "VALIDATION_ERROR")


def test_jobs_are_invisible_to_everyone_but_their_owner(
        api: ApiClient, website: FakeWebsite) -> None:
    owner, stranger = new_session(), new_session()
    job_id = api.create_analysis(website.url("/"), owner)
    for path in (f"/api/v1/jobs/{job_id}/status",):
        assert_error(api.http.get(path, headers=stranger), 404, "JOB_NOT_FOUND")
        assert api.http.get(path, headers=owner).status_code == 200
    for action in ("retry", "cancel"):
        assert_error(api.http.post(f"/api/v1/jobs/{job_id}/{action}", headers=stranger), 404,
                     "JOB_NOT_FOUND")
    # A user's job is visible with that user's token only.
    user = api.token_for()
    user_job = api.create_analysis(website.url("/"), {**user, **owner})
    assert api.http.get(f"/api/v1/jobs/{user_job}/status", headers=user).status_code == 200
    assert_error(api.http.get(f"/api/v1/jobs/{user_job}/status", headers=owner), 404,
                 "JOB_NOT_FOUND")
    assert_error(api.http.get(f"/api/v1/jobs/{user_job}/status", headers=api.token_for()),
                 404, "JOB_NOT_FOUND")
    # A session job stays visible with its session id when a token is also sent.
    assert api.http.get(f"/api/v1/jobs/{job_id}/status",
                        headers={**user, **owner}).status_code == 200


# An id no job has, written out: pytest-xdist needs the same test ids in every process.
@pytest.mark.parametrize("job_id", ["not-a-uuid", "0b9c1e2a-5d43-4f7e-9a61-3c2d8e7f4b10",
                                    "1' OR '1'='1"])
def test_unknown_or_malformed_ids_are_404(api: ApiClient, job_id: str) -> None:
    session = new_session()
    assert_error(api.http.get(f"/api/v1/jobs/{job_id}/status", headers=session), 404,
                 "JOB_NOT_FOUND")
    assert_error(api.http.post(f"/api/v1/jobs/{job_id}/cancel", headers=session), 404,
                 "JOB_NOT_FOUND")


def test_unknown_routes_and_methods_answer_json(api: ApiClient) -> None:
    assert_error(api.http.get("/nope"), 404, "NOT_FOUND")
    assert_error(api.http.get(CREATE, headers=new_session()), 405, "METHOD_NOT_ALLOWED")
    assert_error(api.http.get("/api/v1/images/not-an-id", headers=new_session()), 404,
                 "IMAGE_NOT_FOUND")


# Every endpoint that takes a URL to fetch, deprecated ones included.
URL_ENDPOINTS = [CREATE, "/api/analyze-website", "/api/generate-audiences",
                 "/api/generate-pitches", "/api/generate-audience-images"]


@pytest.mark.parametrize("url", ["https://not a url at all", "http://exa_mple-.com/",
                                 "http://127.1/", "http://a..b/", "http://[fe80::1%25eth0]/"])
def test_a_url_whose_host_is_not_a_host_name_or_address_is_400(
        api: ApiClient, url: str) -> None:
    host = urlsplit(url).hostname
    for path in URL_ENDPOINTS:
        body = assert_error(api.http.post(path, json={"url": url}, headers=new_session()),
                            400, "VALIDATION_ERROR")
        assert body["fields"]["url"] == [
            f"The host {host!r} is not a valid host name or IP address."], path


def test_a_url_with_a_bad_port_is_400(api: ApiClient) -> None:
    body = assert_error(api.http.post(CREATE, json={"url": "http://example.com:99999/"},
                                      headers=new_session()), 400, "VALIDATION_ERROR")
    assert body["fields"]["url"] == ["The port must be a number from 0 to 65535."]


def test_host_names_and_addresses_are_taken(api: ApiClient) -> None:
    for url in ("https://bücher.example/", "http://my_site.example.org./a?b#c",
                "http://93.184.216.34:8080/", "http://[2001:db8::1]/"):
        response = api.http.post(CREATE, json={"url": url}, headers=new_session())
        assert response.status_code == 201, (url, response.get_json())
