"""Bodies over 1 MiB are 413 PAYLOAD_TOO_LARGE on every endpoint that takes one, whether
they come with a Content-Length or chunked, through gunicorn as deployed."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.integration.conftest import start_gunicorn
from tests.integration.support import ApiClient, new_session, wait_until_serving

MIB = 1024 * 1024
# Every POST route takes a JSON body except these, which read none.
BODILESS = {"/api/v1/jobs/<job_id>/retry", "/api/v1/jobs/<job_id>/cancel",
            "/api/v1/auth/refresh", "/ops/api/jobs/<uuid:job_id>/retry",
            "/ops/api/jobs/<uuid:job_id>/cancel", "/ops/api/types/<job_type>/resume"}
WITH_BODY = ["/api/v1/jobs/website-analysis", "/api/v1/jobs/content-generation",
             "/api/v1/auth/register", "/api/v1/auth/login", "/api/analyze-website",
             "/api/generate-audiences", "/api/generate-pitches",
             "/api/generate-audience-images", "/api/v1/enhanced-blog-generation/generate",
             "/ops/api/jobs/retry", "/ops/api/jobs/cancel", "/ops/api/prune",
             "/ops/api/types/<job_type>/pause"]
OPS_TOKEN = "ops-token-of-the-body-limit-test"


@pytest.fixture
def gunicorn(db_url: str) -> Iterator[str]:
    server, base = start_gunicorn(db_url, processes=1, ACCESS_LOG="0", OPS_TOKEN=OPS_TOKEN)
    try:
        wait_until_serving(base, timeout=30)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _chunked(body: bytes, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """A generator body: requests sends it with Transfer-Encoding: chunked."""
    for start in range(0, len(body), chunk):
        yield body[start:start + chunk]


def _padded(size: int) -> bytes:
    """A valid JSON object of `size` bytes: a website analysis and trailing blanks, so
    that a server reading only its first MiB still sees valid JSON."""
    head = b'{"url": "https://example.com/"}'
    return head + b" " * (size - len(head))


def test_every_endpoint_with_a_body_is_listed(api: ApiClient) -> None:
    posts = {rule.rule for rule in api.app.url_map.iter_rules()
             if "POST" in (rule.methods or ())}
    assert posts - BODILESS == set(WITH_BODY)


def test_a_chunked_body_over_one_mib_is_413_everywhere(gunicorn: str) -> None:
    signed_in = requests.post(f"{gunicorn}/api/v1/auth/register", timeout=10, json={
        "email": f"big-{uuid.uuid4().hex[:8]}@example.com", "password": "correct horse"})
    assert signed_in.status_code == 201, signed_in.text
    users = {"Content-Type": "application/json", **new_session(),
             "Authorization": f"Bearer {signed_in.json()['accessToken']}"}
    operators = {"Content-Type": "application/json", "Authorization": f"Bearer {OPS_TOKEN}"}
    for path in WITH_BODY:
        headers = operators if path.startswith("/ops/") else users
        for excess in (1, 100 * 1024):
            answer = requests.post(f"{gunicorn}{path}", data=_chunked(_padded(MIB + excess)),
                                   headers=headers, timeout=30)
            assert answer.status_code == 413, (path, excess, answer.text)
            assert answer.json()["errorCode"] == "PAYLOAD_TOO_LARGE", (path, answer.text)
        # With a Content-Length too.
        answer = requests.post(f"{gunicorn}{path}", data=_padded(MIB + 1), headers=headers,
                               timeout=30)
        assert (answer.status_code, answer.json()["errorCode"]) == (413, "PAYLOAD_TOO_LARGE")


def test_a_chunked_body_of_exactly_one_mib_is_read_whole(gunicorn: str) -> None:
    headers = {"Content-Type": "application/json", **new_session()}
    created = requests.post(f"{gunicorn}/api/v1/jobs/website-analysis",
                            data=_chunked(_padded(MIB)), headers=headers, timeout=30)
    assert created.status_code == 201, created.text
