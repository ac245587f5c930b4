"""A valid token of an account that no longer exists (deleted from users) is 401
TOKEN_INVALID on every endpoint that reads identity, as a bad token is: it can neither
create, list, poll, retry or cancel jobs nor read images or posts."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.integration.support import ApiClient, new_session

# Routes that read no identity: the rest must refuse a deleted account.
NO_IDENTITY = {"/healthz", "/readyz", "/metrics", "/api/v1/openapi.json", "/", "/ops",
               "/ops/data", "/static/<path:filename>", "/api/v1/auth/register",
               "/api/v1/auth/login",
               # the ops API: OPS_TOKEN, not a user's (tests/integration/test_ops_api.py)
               "/ops/api/jobs", "/ops/api/jobs/counts", "/ops/api/jobs/<uuid:job_id>",
               "/ops/api/jobs/<uuid:job_id>/retry", "/ops/api/jobs/<uuid:job_id>/cancel",
               "/ops/api/jobs/retry", "/ops/api/jobs/cancel", "/ops/api/prune",
               "/ops/api/audit", "/ops/api/types", "/ops/api/types/<job_type>/pause",
               "/ops/api/types/<job_type>/resume"}
ANALYSIS = {"url": "https://example.com/"}
ANALYSIS_FIELDS = {"businessName": "Acme", "businessType": "SaaS", "industry": "Software",
                   "description": "Dashboards.", "targetAudience": "Teams",
                   "brandVoice": "Plain", "keywords": ["dashboards"]}
AUDIENCE = {"name": "Owners", "description": "Small shops.", "painPoints": ["Time"]}


def _requests(job_id: str, organization_id: str) -> dict[str, tuple[str, str, Any]]:
    """route -> (method, path, JSON body or None): a valid request for each."""
    generation = {"organizationId": organization_id, "topic": {"title": "Paid faster"},
                  "businessInfo": {}}
    return {
        "/api/v1/jobs/website-analysis": ("POST", "/api/v1/jobs/website-analysis", ANALYSIS),
        "/api/v1/jobs/content-generation": ("POST", "/api/v1/jobs/content-generation",
                                            generation),
        "/api/v1/jobs/<job_id>/status": ("GET", f"/api/v1/jobs/{job_id}/status", None),
        "/api/v1/jobs/<job_id>/events": ("GET", f"/api/v1/jobs/{job_id}/events", None),
        "/api/v1/jobs/<job_id>/retry": ("POST", f"/api/v1/jobs/{job_id}/retry", None),
        "/api/v1/jobs/<job_id>/cancel": ("POST", f"/api/v1/jobs/{job_id}/cancel", None),
        "/api/v1/jobs/": ("GET", "/api/v1/jobs/", None),
        "/api/v1/images/<image_id>": ("GET", f"/api/v1/images/{uuid.uuid4()}", None),
        "/api/v1/posts/<post_id>": ("GET", f"/api/v1/posts/{uuid.uuid4()}", None),
        "/api/v1/auth/me": ("GET", "/api/v1/auth/me", None),
        "/api/v1/auth/refresh": ("POST", "/api/v1/auth/refresh", None),
        "/api/analyze-website": ("POST", "/api/analyze-website", ANALYSIS),
        "/api/generate-audiences": ("POST", "/api/generate-audiences",
                                    {"analysis": ANALYSIS_FIELDS}),
        "/api/generate-pitches": ("POST", "/api/generate-pitches",
                                  {"analysis": ANALYSIS_FIELDS, "audiences": [AUDIENCE]}),
        "/api/generate-audience-images": ("POST", "/api/generate-audience-images", {
            "analysis": ANALYSIS_FIELDS,
            "scenarios": [{"audience": AUDIENCE, "pitch": "Save an hour a day."}]}),
        "/api/v1/enhanced-blog-generation/generate": (
            "POST", "/api/v1/enhanced-blog-generation/generate", generation),
    }


def test_every_route_is_covered(api: ApiClient) -> None:
    routes = {rule.rule for rule in api.app.url_map.iter_rules()}
    assert routes - NO_IDENTITY == set(_requests("j", "o"))


@pytest.mark.parametrize("with_session", [False, True])
def test_a_deleted_accounts_token_is_401_everywhere(
        api: ApiClient, db: psycopg.Connection[Any], with_session: bool) -> None:
    signed_in = api.register()
    user_id = signed_in["user"]["id"]
    access = api.bearer(signed_in, **(new_session() if with_session else {}))
    refresh = {"Authorization": f"Bearer {signed_in['refreshToken']}"}
    job_id = api.create_analysis("https://example.com/", access)
    # An organization of the user's, for the content-generation bodies.
    organization_id = str(uuid.uuid4())
    db.execute("INSERT INTO organizations (id, owner_user_id, name, website_url, analysis) "
               "VALUES (%s, %s, 'Acme', 'https://example.com/', '{}')",
               (organization_id, user_id))
    # While the account exists, the job is the user's.
    assert api.http.get(f"/api/v1/jobs/{job_id}/status", headers=access).status_code == 200
    assert api.http.get("/api/v1/jobs/", headers=access).get_json()["count"] == 1

    db.execute("DELETE FROM users WHERE id = %s", (user_id,))
    for route, (method, path, body) in _requests(job_id, organization_id).items():
        headers = refresh if route == "/api/v1/auth/refresh" else access
        answer = api.http.open(path, method=method, json=body, headers=headers)
        assert answer.status_code == 401, (route, answer.get_json())
        assert answer.get_json() == {"error": "The account no longer exists.",
                                     "errorCode": "TOKEN_INVALID"}, route
    # A poll that already has the document, and one for a job that is not the user's.
    for extra, path in (({"If-None-Match": "*"}, f"/api/v1/jobs/{job_id}/status"),
                        ({}, f"/api/v1/jobs/{uuid.uuid4()}/status")):
        answer = api.http.get(path, headers={**access, **extra})
        assert (answer.status_code, answer.get_json()["errorCode"]) == (401, "TOKEN_INVALID")
    assert db.execute("SELECT count(*) FROM jobs").fetchone() == (1,)  # nothing created
