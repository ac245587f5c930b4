"""The deprecated synchronous endpoints: the job pipeline run inside the request, the same
bodies as the job results, Deprecation/Link headers, and polls answered meanwhile."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import schemathesis
from werkzeug.test import TestResponse

from queue_jobs.config.settings import QueueSettings
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.website import FakeWebsite
from tests.integration.support import ApiClient, new_session, wait_until
from webapp.views.openapi import build_document

ANALYSIS_KEYS = {"businessName", "businessType", "industry", "description", "targetAudience",
                 "brandVoice", "keywords"}


@pytest.fixture
def make_api(api_factory: Callable[..., ApiClient],
             settings: QueueSettings) -> Callable[..., ApiClient]:
    """An API whose in-request runs use the fake LLM and may fetch the local site."""
    return lambda **overrides: api_factory(queue_settings=settings, **overrides)


@pytest.fixture
def legacy(make_api: Callable[..., ApiClient]) -> ApiClient:
    return make_api()


DOCUMENT = schemathesis.openapi.from_dict(build_document())


def assert_deprecated(response: TestResponse, successor: str) -> None:
    assert response.headers["Deprecation"].startswith("@")
    assert response.headers["Link"] == f'<{successor}>; rel="successor-version"'
    # The answer is what the OpenAPI document says it is (status, headers, body).
    path = response.request.path
    DOCUMENT[path]["POST"].validate_response(response)


def test_analyze_website_answers_the_job_result_in_the_request(
        legacy: ApiClient, fake_llm: FakeOpenAI, website: FakeWebsite) -> None:
    session = new_session()
    response = legacy.http.post("/api/analyze-website", json={"url": website.url("/")},
                                headers=session)
    assert response.status_code == 200, response.get_json()
    assert_deprecated(response, "/api/v1/jobs/website-analysis")
    body = response.get_json()
    assert set(body) == {"success", "url", "organizationId", "analysis", "scenarios", "ctas",
                         "metadata"}
    assert set(body["analysis"]) == ANALYSIS_KEYS and body["metadata"]["durationMs"] > 0
    image = legacy.http.get(body["scenarios"][0]["imageUrl"], headers=session)
    assert image.status_code == 200
    # It was a job like any other: the session sees it, succeeded, with the same body.
    [job] = legacy.http.get("/api/v1/jobs/", headers=session).get_json()["jobs"]
    assert job["status"] == "succeeded" and job["type"] == "website-analysis"
    assert legacy.status(job["jobId"], session)["result"] == body


def test_a_call_without_identity_gets_a_session_for_its_images(
        legacy: ApiClient, website: FakeWebsite) -> None:
    response = legacy.http.post("/api/analyze-website", json={"url": website.url("/")})
    assert response.status_code == 200
    session = {"x-session-id": response.headers["X-Session-Id"]}
    image_url = response.get_json()["scenarios"][0]["imageUrl"]
    assert legacy.http.get(image_url, headers=session).status_code == 200
    assert legacy.http.get(image_url, headers=new_session()).status_code == 404


def test_a_failed_run_answers_its_error_code_and_job(
        legacy: ApiClient, website: FakeWebsite) -> None:
    session = new_session()
    response = legacy.http.post("/api/analyze-website", json={"url": website.url("/missing")},
                                headers=session)
    assert response.status_code == 422
    body = response.get_json()
    assert body["errorCode"] == "FETCH_FAILED" and body["error"]
    assert_deprecated(response, "/api/v1/jobs/website-analysis")
    assert legacy.status(body["jobId"], session)["errorCode"] == "FETCH_FAILED"


def test_the_step_endpoints_chain_like_the_job_steps(
        legacy: ApiClient, fake_llm: FakeOpenAI, website: FakeWebsite) -> None:
    session = new_session()
    analysis = legacy.http.post("/api/analyze-website", json={"url": website.url("/")},
                                headers=session).get_json()["analysis"]

    audiences = legacy.http.post("/api/generate-audiences", headers=session,
                                 json={"analysis": analysis, "url": website.url("/")})
    assert audiences.status_code == 200, audiences.get_json()
    assert_deprecated(audiences, "/api/v1/jobs/website-analysis")
    found = audiences.get_json()["audiences"]
    assert 2 <= len(found) <= 5 and set(found[0]) == {"name", "description", "painPoints"}

    pitches = legacy.http.post("/api/generate-pitches", headers=session,
                               json={"analysis": analysis, "audiences": found})
    assert pitches.status_code == 200, pitches.get_json()
    scenarios = pitches.get_json()["scenarios"]
    assert [s["audience"] for s in scenarios] == found
    assert all(set(s) == {"id", "audience", "pitch"} and s["pitch"] for s in scenarios)

    images_before = fake_llm.calls("images")
    images = legacy.http.post("/api/generate-audience-images", headers=session,
                              json={"analysis": analysis, "scenarios": scenarios[:2]})
    assert images.status_code == 200, images.get_json()
    drawn = images.get_json()["scenarios"]
    assert [s["pitch"] for s in drawn] == [s["pitch"] for s in scenarios[:2]]
    assert fake_llm.calls("images") == images_before + 2
    assert legacy.http.get(drawn[1]["imageUrl"], headers=session).status_code == 200
    bad = legacy.http.post("/api/generate-pitches", headers=session,
                           json={"analysis": {**analysis, "keywords": []}, "audiences": []})
    assert bad.status_code == 400
    assert set(bad.get_json()["fields"]) == {"analysis", "audiences"}


def test_blog_generation_needs_a_user_and_answers_the_job_result(
        legacy: ApiClient, website: FakeWebsite) -> None:
    body = {"topic": {"title": "Get paid faster"}, "businessInfo": {},
            "options": {"autoSave": True, "includeVisuals": True}}
    refused = legacy.http.post("/api/v1/enhanced-blog-generation/generate",
                               json={**body, "organizationId": "x"}, headers=new_session())
    assert refused.status_code == 401
    user = legacy.bearer(legacy.register())
    organization_id = legacy.http.post("/api/analyze-website", json={"url": website.url("/")},
                                       headers=user).get_json()["organizationId"]
    response = legacy.http.post("/api/v1/enhanced-blog-generation/generate", headers=user,
                                json={**body, "organizationId": organization_id})
    assert response.status_code == 200, response.get_json()
    assert_deprecated(response, "/api/v1/jobs/content-generation")
    result = response.get_json()
    assert set(result) == {"success", "data", "savedPost", "metadata", "imageGeneration"}
    assert result["imageGeneration"] == {"requested": True, "generated": 1, "failed": 0}
    post = legacy.http.get(f"/api/v1/posts/{result['savedPost']['id']}", headers=user)
    assert post.status_code == 200


def test_polls_are_answered_while_a_slow_call_runs_and_cancel_reaches_it(
        make_api: Callable[..., ApiClient], fake_llm: FakeOpenAI, website: FakeWebsite) -> None:
    legacy = make_api(legacy_calls_per_process=1)
    session = new_session()
    fake_llm.set_delay("chat:audiences", 30)
    answers: list[TestResponse] = []
    call = threading.Thread(target=lambda: answers.append(legacy.app.test_client().post(
        "/api/analyze-website", json={"url": website.url("/")}, headers=session)))
    call.start()
    fake_llm.wait_for_calls("chat:audiences", 1)
    # While it runs: its job is visible and running, other requests are answered (the step
    # before it was written as it finished, so this one shows before its call is made)...
    [job] = legacy.http.get("/api/v1/jobs/", headers=session).get_json()["jobs"]
    assert job["status"] == "running" and job["currentStep"] == "Generating audiences..."
    # ...but a second synchronous call in this process would wait behind it: refused.
    busy = legacy.http.post("/api/analyze-website", json={"url": website.url("/")},
                            headers=new_session())
    assert busy.status_code == 429 and busy.headers["Retry-After"] == "5"
    # Cancel ends it within the contract's 5 s, though its LLM call is still blocked.
    assert legacy.http.post(f"/api/v1/jobs/{job['jobId']}/cancel",
                            headers=session).status_code == 200
    wait_until(lambda: legacy.status(job["jobId"], session)["errorCode"] == "CANCELLED",
               timeout=5, message="the cancel to land")
    fake_llm.reset()  # let the blocked call return, so the request can answer
    call.join(15)
    assert answers and answers[0].status_code == 409
    assert answers[0].get_json()["errorCode"] == "CANCELLED"


def test_a_failed_step_call_is_retried_by_calling_again_not_by_a_worker(
        legacy: ApiClient, fake_llm: FakeOpenAI, website: FakeWebsite) -> None:
    session = new_session()
    analysis = legacy.http.post("/api/analyze-website", json={"url": website.url("/")},
                                headers=session).get_json()["analysis"]
    # The schema sent carries the count, so the fake writes one pitch per audience.
    audiences = [{"name": f"Team {n}", "description": "A team", "painPoints": ["Toil"]}
                 for n in range(3)]
    fake_llm.fail_next("chat:pitches", 400)  # refused for good: no in-step retry
    failed = legacy.http.post("/api/generate-pitches", headers=session,
                              json={"analysis": analysis, "audiences": audiences})
    assert failed.status_code == 502 and failed.get_json()["errorCode"] == "LLM_ERROR"
    assert_deprecated(failed, "/api/v1/jobs/website-analysis")
    job_id = failed.get_json()["jobId"]
    # Only the caller had the steps before it: a worker could not resume this job.
    retry = legacy.http.post(f"/api/v1/jobs/{job_id}/retry", headers=session)
    assert retry.status_code == 409 and retry.get_json()["errorCode"] == "JOB_NOT_RETRYABLE"
    again = legacy.http.post("/api/generate-pitches", headers=session,
                             json={"analysis": analysis, "audiences": audiences})
    assert again.status_code == 200, again.get_json()


def test_the_synchronous_calls_ask_a_misbehaving_model_again(
        legacy: ApiClient, fake_llm: FakeOpenAI, website: FakeWebsite) -> None:
    session = new_session()
    analysis = {key: f"Acme {key}" for key in ANALYSIS_KEYS} | {"keywords": ["invoicing"]}
    audiences = [{"name": f"Team {n}", "description": "A team", "painPoints": ["Toil"]}
                 for n in range(2)]
    fake_llm.answer_badly("chat:pitches", "wrong_count")  # 3 pitches for 2 audiences
    pitches = legacy.http.post("/api/generate-pitches", headers=session,
                               json={"analysis": analysis, "audiences": audiences})
    assert pitches.status_code == 200, pitches.get_json()
    assert [s["audience"] for s in pitches.get_json()["scenarios"]] == audiences
    assert all(s["pitch"] for s in pitches.get_json()["scenarios"])
    sent = [entry["response_format"]["json_schema"]["schema"]["properties"]["pitches"]
            for entry in fake_llm.requests_log if entry["kind"] == "chat:pitches"]
    assert [(s["minItems"], s["maxItems"]) for s in sent] == [(2, 2), (2, 2)]
    assert "exactly 2 items, got 3" in fake_llm.messages("chat:pitches")[1][-1]["content"]

    # Three unusable answers in a row: the call fails as the job does, 502 LLM_ERROR.
    fake_llm.answer_badly("chat:business_analysis", "not_json", times=3)
    failed = legacy.http.post("/api/analyze-website", json={"url": website.url("/")},
                              headers=session)
    assert failed.status_code == 502, failed.get_json()
    body = failed.get_json()
    assert body["errorCode"] == "LLM_ERROR"
    assert "invalid JSON for business_analysis" in body["error"]
    assert "asked 3 times" in body["error"]
    assert fake_llm.calls("chat:business_analysis") == 3
    assert_deprecated(failed, "/api/v1/jobs/website-analysis")
