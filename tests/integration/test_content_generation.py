"""Content generation and the sign-up funnel: anonymous analysis, register, write a post
for that organization; what strangers can and cannot see; visuals failing and retried."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg
import pytest

from queue_jobs.config.settings import QueueSettings
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.website import FakeWebsite
from tests.integration.support import ApiClient, ThreadWorker, new_session, wait_until

CREATE = "/api/v1/jobs/content-generation"
STEP_LABELS = ["Generating content...", "Generating visuals...", "Saving post..."]
POST_KEYS = {"title", "content", "excerpt", "tags", "seo", "visuals"}


def generation_body(organization_id: str, **options: Any) -> dict[str, Any]:
    return {
        "topic": {"title": "Five ways to get paid faster"},
        "businessInfo": {"businessType": "B2B SaaS", "targetAudience": "freelancers"},
        "organizationId": organization_id,
        "additionalInstructions": "Friendly tone.",
        "options": options,
    }


def analysed_organization(api: ApiClient, website: FakeWebsite,
                          headers: dict[str, str]) -> str:
    job_id = api.create_analysis(website.url("/"), headers)
    done = api.wait_for_status(job_id, headers, {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    return str(done["result"]["organizationId"])


def generate(api: ApiClient, headers: dict[str, str], body: dict[str, Any]) -> str:
    response = api.http.post(CREATE, json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["jobId"])


@pytest.fixture
def signed_in(api: ApiClient) -> dict[str, str]:
    return api.bearer(api.register())


def test_the_funnel_from_anonymous_analysis_to_a_saved_post_with_visuals(
        api: ApiClient, worker: ThreadWorker, fake_llm: FakeOpenAI,
        website: FakeWebsite) -> None:
    session = new_session()
    organization_id = analysed_organization(api, website, session)
    account = api.register(headers=session)  # the session's organization becomes the user's
    user = api.bearer(account)
    me = api.http.get("/api/v1/auth/me", headers=user).get_json()
    assert [o["id"] for o in me["organizations"]] == [organization_id]
    assert me["organizations"][0]["analysis"]["businessName"]

    fake_llm.set_delay("chat:blog_post", 0.3)
    fake_llm.set_delay("images", 0.3)
    job_id = generate(api, user, generation_body(organization_id, includeVisuals=True,
                                                 autoSave=True, status="draft"))
    seen: list[dict[str, Any]] = []

    def finished() -> bool:
        seen.append(api.status(job_id, user))
        return seen[-1]["status"] in ("succeeded", "failed")

    wait_until(finished, timeout=20, interval=0.02, message="content generation")
    final = seen[-1]
    assert final["status"] == "succeeded", final
    assert final["type"] == "content-generation" and final["progress"] == 100
    steps = [doc["currentStep"] for doc in seen if doc["status"] == "running"]
    # The slowed steps are always seen; "Saving post..." is too quick to be sure of.
    assert set(STEP_LABELS[:2]) <= set(steps)
    assert steps == sorted(steps, key=STEP_LABELS.index)

    result = final["result"]
    assert set(result) == {"success", "data", "savedPost", "metadata", "imageGeneration"}
    assert result["success"] is True and set(result["data"]) == POST_KEYS
    assert set(result["data"]["seo"]) == {"metaTitle", "metaDescription", "keywords"}
    assert result["imageGeneration"] == {"requested": True, "generated": 1, "failed": 0}
    assert result["metadata"]["provider"] == "openai" and result["metadata"]["durationMs"] > 0
    [visual] = result["data"]["visuals"]
    assert set(visual) == {"imageUrl", "prompt", "alt"}
    image = api.http.get(visual["imageUrl"], headers=user)
    assert image.status_code == 200 and image.data.startswith(b"\x89PNG")

    saved = result["savedPost"]
    assert set(saved) == {"id", "organizationId", "title", "status", "createdAt"}
    assert saved["organizationId"] == organization_id and saved["status"] == "draft"
    post = api.http.get(f"/api/v1/posts/{saved['id']}", headers=user)
    assert post.status_code == 200, post.get_json()
    body = post.get_json()
    assert body["content"] == result["data"]["content"] and body["title"] == saved["title"]
    assert body["visuals"] == result["data"]["visuals"]

    # The prompt carried the organization's stored analysis and the request's own words.
    [request] = [r for r in fake_llm.requests_log if r["kind"] == "chat:blog_post"]
    prompt = request["messages"][-1]["content"]
    assert me["organizations"][0]["analysis"]["businessName"] in prompt
    assert "freelancers" in prompt and "Friendly tone." in prompt


def test_without_visuals_or_autosave_nothing_is_drawn_or_saved(
        api: ApiClient, worker: ThreadWorker, fake_llm: FakeOpenAI, website: FakeWebsite,
        signed_in: dict[str, str], db: psycopg.Connection[Any]) -> None:
    organization_id = analysed_organization(api, website, signed_in)
    images_before = fake_llm.calls("images")
    job_id = generate(api, signed_in, generation_body(organization_id))
    done = api.wait_for_status(job_id, signed_in, {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert result["savedPost"] is None and result["data"]["visuals"] == []
    assert result["imageGeneration"] == {"requested": False, "generated": 0, "failed": 0}
    assert fake_llm.calls("images") == images_before
    assert db.execute("SELECT count(*) FROM posts").fetchone() == (0,)


def test_published_autosave_without_visuals(
        api: ApiClient, worker: ThreadWorker, website: FakeWebsite,
        signed_in: dict[str, str]) -> None:
    organization_id = analysed_organization(api, website, signed_in)
    job_id = generate(api, signed_in, generation_body(organization_id, autoSave=True,
                                                      status="published"))
    done = api.wait_for_status(job_id, signed_in, {"succeeded", "failed"})
    saved = done["result"]["savedPost"]
    assert saved["status"] == "published"
    post = api.http.get(f"/api/v1/posts/{saved['id']}", headers=signed_in).get_json()
    assert post["status"] == "published" and post["visuals"] == []


def test_failure_at_visuals_then_retry_does_not_rewrite_the_content(
        api: ApiClient, worker: ThreadWorker, fake_llm: FakeOpenAI, website: FakeWebsite,
        signed_in: dict[str, str], db: psycopg.Connection[Any]) -> None:
    organization_id = analysed_organization(api, website, signed_in)
    images_before = fake_llm.calls("images")
    fake_llm.fail_next("images", 500, times=3)  # first try + 2 in-step retries
    job_id = generate(api, signed_in, generation_body(organization_id, includeVisuals=True,
                                                      autoSave=True))
    failed = api.wait_for_status(job_id, signed_in, {"succeeded", "failed"})
    assert failed["status"] == "failed", failed
    assert failed["currentStep"] == "Generating visuals..." and failed["errorCode"] == "LLM_ERROR"
    assert fake_llm.calls("chat:blog_post") == 1
    assert db.execute("SELECT count(*) FROM posts").fetchone() == (0,)

    assert api.http.post(f"/api/v1/jobs/{job_id}/retry", headers=signed_in).status_code == 200
    done = api.wait_for_status(job_id, signed_in, {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    assert fake_llm.calls("chat:blog_post") == 1  # the checkpointed text was kept
    assert fake_llm.calls("images") == images_before + 4
    assert done["result"]["imageGeneration"]["generated"] == 1
    assert db.execute("SELECT count(*) FROM posts").fetchone() == (1,)


def test_an_image_refused_for_good_is_counted_and_the_post_still_saved(
        api: ApiClient, worker: ThreadWorker, fake_llm: FakeOpenAI, website: FakeWebsite,
        signed_in: dict[str, str]) -> None:
    organization_id = analysed_organization(api, website, signed_in)
    fake_llm.fail_next("images", 400)  # e.g. a content-policy refusal: not worth retrying
    job_id = generate(api, signed_in, generation_body(organization_id, includeVisuals=True,
                                                      autoSave=True))
    done = api.wait_for_status(job_id, signed_in, {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    assert done["result"]["imageGeneration"] == {"requested": True, "generated": 0,
                                                 "failed": 1}
    assert done["result"]["data"]["visuals"] == [] and done["result"]["savedPost"]


def test_strangers_cannot_use_or_read_anything_of_anothers(
        api: ApiClient, worker: ThreadWorker, website: FakeWebsite) -> None:
    session = new_session()
    organization_id = analysed_organization(api, website, session)
    owner = api.bearer(api.register(headers=session))
    job_id = generate(api, owner, generation_body(organization_id, includeVisuals=True,
                                                  autoSave=True))
    result = api.wait_for_status(job_id, owner, {"succeeded", "failed"})["result"]
    post_url = f"/api/v1/posts/{result['savedPost']['id']}"
    image_url = result["data"]["visuals"][0]["imageUrl"]
    assert api.http.get(image_url, headers=owner).status_code == 200

    stranger = api.bearer(api.register())
    # Even with the session that created it: the organization is the first user's now.
    stranger_with_session = {**stranger, **session}
    for headers in (stranger, stranger_with_session):
        refused = api.http.post(CREATE, json=generation_body(organization_id), headers=headers)
        assert refused.status_code == 404
        assert refused.get_json()["errorCode"] == "ORGANIZATION_NOT_FOUND"
        assert api.http.get(post_url, headers=headers).get_json()["errorCode"] == \
            "POST_NOT_FOUND"
        assert api.http.get(f"/api/v1/jobs/{job_id}/status", headers=headers).status_code == 404
        assert api.http.get(image_url, headers=headers).status_code == 404
        me = api.http.get("/api/v1/auth/me", headers=headers).get_json()
        assert me["organizations"] == []
    anonymous = api.http.get(image_url, headers=new_session())
    assert anonymous.status_code == 404 and anonymous.get_json()["errorCode"] == "IMAGE_NOT_FOUND"


def test_a_session_organization_is_usable_with_jwt_and_session_together(
        api: ApiClient, worker: ThreadWorker, website: FakeWebsite) -> None:
    session = new_session()
    organization_id = analysed_organization(api, website, session)
    user = api.bearer(api.register())  # registered without the session
    body = generation_body(organization_id)
    assert api.http.post(CREATE, json=body, headers=user).status_code == 404
    # JWT + the session that created it: usable, and from then on the user's.
    assert api.http.post(CREATE, json=body, headers={**user, **session}).status_code == 201
    assert api.http.post(CREATE, json=body, headers=user).status_code == 201
    # The anonymous analysis job itself stays the session's (contract §3).
    assert api.http.get("/api/v1/jobs/", headers=session).get_json()["count"] == 1


@pytest.mark.parametrize(("body", "bad_fields"), [
    ({}, {"topic", "businessInfo", "organizationId"}),
    ({"topic": {}, "businessInfo": {}, "organizationId": "x"}, {"topic"}),
    ({"topic": {"title": " "}, "businessInfo": "b2b", "organizationId": "x"},
     {"topic", "businessInfo"}),
    ({"topic": {"title": "t"}, "businessInfo": {}, "organizationId": "x",
      "options": {"status": "archived", "includeVisuals": "maybe"}}, {"options"}),
    ({"topic": {"title": "t" * 201}, "businessInfo": {}, "organizationId": "x",
      "surprise": 1}, {"topic", "surprise"}),
])
def test_invalid_bodies_name_each_bad_field(api: ApiClient, signed_in: dict[str, str],
                                           body: dict[str, Any], bad_fields: set[str]) -> None:
    response = api.http.post(CREATE, json=body, headers=signed_in)
    assert response.status_code == 400
    error = response.get_json()
    assert error["errorCode"] == "VALIDATION_ERROR" and set(error["fields"]) == bad_fields


def test_content_generation_needs_a_user_and_a_visible_organization(
        api: ApiClient, signed_in: dict[str, str]) -> None:
    body = generation_body("not-a-uuid")
    anonymous = api.http.post(CREATE, json=body, headers=new_session())
    assert anonymous.status_code == 401 and anonymous.get_json()["errorCode"] == "AUTH_REQUIRED"
    for organization_id in ("not-a-uuid", "7d4f4c36-1f0e-4d1e-9a55-8f1f5d0c2b11"):
        missing = api.http.post(CREATE, json=generation_body(organization_id), headers=signed_in)
        assert missing.status_code == 404
        assert missing.get_json()["errorCode"] == "ORGANIZATION_NOT_FOUND"
    for post_id in ("nope", "7d4f4c36-1f0e-4d1e-9a55-8f1f5d0c2b11"):
        post = api.http.get(f"/api/v1/posts/{post_id}", headers=signed_in)
        assert post.status_code == 404 and post.get_json()["errorCode"] == "POST_NOT_FOUND"
    assert api.http.get("/api/v1/posts/nope", headers=new_session()).status_code == 401


def test_the_offline_provider_writes_a_readable_post_from_the_analysis(
        api: ApiClient, settings: QueueSettings, website: FakeWebsite,
        signed_in: dict[str, str]) -> None:
    with ThreadWorker(replace(settings, llm_provider="offline")):
        organization_id = analysed_organization(api, website, signed_in)
        job_id = generate(api, signed_in, generation_body(organization_id, includeVisuals=True,
                                                          autoSave=True))
        done = api.wait_for_status(job_id, signed_in, {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert result["metadata"]["provider"] == "offline"
    me = api.http.get("/api/v1/auth/me", headers=signed_in).get_json()
    business = me["organizations"][0]["analysis"]["businessName"]
    post = api.http.get(f"/api/v1/posts/{result['savedPost']['id']}", headers=signed_in)
    content = post.get_json()["content"]
    assert business in content and content.count("\n## ") >= 3
    assert len(content.split()) >= 300 and "Fake" not in content
    assert website.url("/") in content  # the closing call to action links to the site
    image = api.http.get(result["data"]["visuals"][0]["imageUrl"], headers=signed_in)
    assert image.status_code == 200 and image.mimetype == "image/png"


def test_logging_in_with_the_session_hands_over_its_organizations(
        api: ApiClient, worker: ThreadWorker, website: FakeWebsite) -> None:
    session = new_session()
    organization_id = analysed_organization(api, website, session)
    account = api.register(email="funnel@example.com")
    me = api.http.get("/api/v1/auth/me", headers=api.bearer(account)).get_json()
    assert me["organizations"] == []
    login = api.http.post("/api/v1/auth/login", headers=session, json={
        "email": "funnel@example.com", "password": "correct horse battery"})
    assert login.status_code == 200
    me = api.http.get("/api/v1/auth/me", headers=api.bearer(login.get_json())).get_json()
    assert [o["id"] for o in me["organizations"]] == [organization_id]


def test_a_running_generation_is_cancelled_mid_call_and_shows_an_estimate(
        api: ApiClient, worker: ThreadWorker, fake_llm: FakeOpenAI, website: FakeWebsite,
        signed_in: dict[str, str]) -> None:
    organization_id = analysed_organization(api, website, signed_in)
    fake_llm.set_delay("chat:blog_post", 30)
    job_id = generate(api, signed_in, generation_body(organization_id))
    fake_llm.wait_for_calls("chat:blog_post", 1)
    running = api.status(job_id, signed_in)
    assert running["status"] == "running" and running["currentStep"] == "Generating content..."
    assert running["estimatedTimeRemaining"] is not None and running["estimatedTimeRemaining"] >= 1
    cancel = api.http.post(f"/api/v1/jobs/{job_id}/cancel", headers=signed_in)
    assert cancel.status_code == 200
    done = api.wait_for_status(job_id, signed_in, {"failed", "succeeded"}, timeout=5)
    assert done["status"] == "failed" and done["errorCode"] == "CANCELLED"
    assert done["currentStep"] == "Generating content..."


def test_the_hand_over_survives_a_refused_create(
        api: ApiClient, worker: ThreadWorker, website: FakeWebsite,
        db: psycopg.Connection[Any]) -> None:
    session = new_session()
    organization_id = analysed_organization(api, website, session)
    user = api.bearer(api.register())
    # Refused (the body names an organization that does not exist), yet the user proved
    # they hold the session: its organization is theirs from now on.
    missing = generation_body("7d4f4c36-1f0e-4d1e-9a55-8f1f5d0c2b11")
    assert api.http.post(CREATE, json=missing, headers={**user, **session}).status_code == 404
    me = api.http.get("/api/v1/auth/me", headers=user).get_json()
    assert [o["id"] for o in me["organizations"]] == [organization_id]


def test_an_idempotent_replay_ignores_how_the_organization_id_is_spelt(
        api: ApiClient, worker: ThreadWorker, website: FakeWebsite,
        signed_in: dict[str, str]) -> None:
    organization_id = analysed_organization(api, website, signed_in)
    keyed = {**signed_in, "Idempotency-Key": "post-1"}
    first = api.http.post(CREATE, json=generation_body(organization_id), headers=keyed)
    again = api.http.post(CREATE, json=generation_body(organization_id.upper()), headers=keyed)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()


def test_text_is_taken_as_typed_and_flags_must_be_booleans(
        api: ApiClient, worker: ThreadWorker, website: FakeWebsite,
        signed_in: dict[str, str]) -> None:
    organization_id = analysed_organization(api, website, signed_in)
    body = generation_body(organization_id)
    body["topic"]["title"] = "\n  Pasted from a text area"
    assert api.http.post(CREATE, json=body, headers=signed_in).status_code == 201
    for flag in ("yes", 1, "on", None):
        bad = generation_body(organization_id, includeVisuals=flag)
        response = api.http.post(CREATE, json=bad, headers=signed_in)
        assert response.status_code == 400, flag
        assert set(response.get_json()["fields"]) == {"options"}
    nul = generation_body(organization_id)
    nul["businessInfo"]["keywords"] = ["fine", "not\u0000fine"]
    response = api.http.post(CREATE, json=nul, headers=signed_in)
    assert response.status_code == 400
    assert set(response.get_json()["fields"]) == {"businessInfo.keywords[1]"}
