"""A model that misbehaves is asked again: jobs on a real worker against the fake OpenAI
server scripted to answer badly (not JSON, cut off, a field missing, a wrong count)
recover on a re-ask, or fail with LLM_ERROR after three bad answers; the re-asks are
counted in llm_reasks_total{step,reason} and as paid calls in the step records."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.website import FakeWebsite
from tests.integration.support import ApiClient, ThreadWorker, new_session, wait_until
from tests.integration.test_content_generation import (
    analysed_organization,
    generate,
    generation_body,
)

ANALYSIS_KEYS = {"businessName", "businessType", "industry", "description", "targetAudience",
                 "brandVoice", "keywords"}


def reasks(step: str, reason: str) -> float:
    """llm_reasks_total as this process counts it (the test worker runs in it)."""
    return REGISTRY.get_sample_value("llm_reasks_total", {"step": step, "reason": reason}) or 0.0


def step_calls(db: psycopg.Connection[Any], job_id: str) -> list[tuple[str, str, int]]:
    return [(row[0], row[1], row[2]) for row in db.execute(
        "SELECT step, outcome, llm_calls FROM job_steps WHERE job_id = %s ORDER BY id",
        (job_id,)).fetchall()]


def step_reasks(db: psycopg.Connection[Any], job_id: str) -> dict[str, int]:
    """Each step's re-asks, from its last record (job_steps.reasks)."""
    return {row[0]: row[1] for row in db.execute(
        "SELECT step, reasks FROM job_steps WHERE job_id = %s ORDER BY id", (job_id,))}


def assert_complete_analysis(result: dict[str, Any]) -> None:
    assert set(result["analysis"]) == ANALYSIS_KEYS
    assert all(result["analysis"][key] for key in ANALYSIS_KEYS)
    assert 2 <= len(result["scenarios"]) <= 5
    for scenario in result["scenarios"]:
        assert set(scenario) == {"id", "audience", "pitch", "imageUrl"}
        assert scenario["pitch"] and scenario["audience"]["name"]


@pytest.mark.parametrize(("kind", "step", "fault", "reason", "named"), [
    ("chat:business_analysis", "analyze", "not_json", "not_json", "is not valid JSON"),
    ("chat:audiences", "audiences", "truncated", "truncated", "was cut off"),
    ("chat:pitches", "pitches", "missing_field", "schema", "is missing 'pitches'"),
    ("chat:pitches", "pitches", "wrong_count", "count", "$.pitches must have exactly 3 items"),
])
def test_each_bad_answer_is_asked_again_and_the_job_succeeds(
        db: psycopg.Connection[Any], api: ApiClient, worker: ThreadWorker,
        fake_llm: FakeOpenAI, website: FakeWebsite, kind: str, step: str, fault: str,
        reason: str, named: str) -> None:
    before = reasks(step, reason)
    fake_llm.answer_badly(kind, fault)
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)

    done = api.wait_for_status(job_id, session, {"succeeded", "failed"}, timeout=30)

    assert done["status"] == "succeeded", done
    assert_complete_analysis(done["result"])
    first, again = fake_llm.messages(kind)
    assert again[:len(first)] == first
    assert again[-2]["role"] == "assistant" and again[-2]["content"]
    assert again[-1]["role"] == "user" and named in again[-1]["content"]
    # The re-ask is a paid call of its step, recorded as any other.
    calls = {name: llm_calls for name, _, llm_calls in step_calls(db, job_id)}
    assert calls[step] == 2
    assert all(calls[other] == 1 for other in ("analyze", "audiences", "pitches")
               if other != step)
    # ... and the step's record says one of its calls was a re-ask (the ops job page).
    assert step_reasks(db, job_id) == {name: int(name == step) for name in calls}
    wait_until(lambda: reasks(step, reason) == before + 1, timeout=5,
               message=f"llm_reasks_total{{step={step},reason={reason}}} + 1")


def test_three_bad_answers_in_a_row_fail_the_step_with_llm_error(
        db: psycopg.Connection[Any], api: ApiClient, worker: ThreadWorker,
        fake_llm: FakeOpenAI, website: FakeWebsite) -> None:
    before = reasks("pitches", "count")
    fake_llm.answer_badly("chat:pitches", "wrong_count", times=3)
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)

    done = api.wait_for_status(job_id, session, {"succeeded", "failed"}, timeout=30)

    assert (done["status"], done["errorCode"]) == ("failed", "LLM_ERROR"), done
    assert "$.pitches must have exactly 3 items, got 4" in done["error"]
    assert fake_llm.calls("chat:pitches") == 3  # not a transient fault: no step retry
    assert step_calls(db, job_id)[-1] == ("pitches", "failed", 3)
    assert step_reasks(db, job_id)["pitches"] == 2  # a failed step's record has them too
    wait_until(lambda: reasks("pitches", "count") == before + 2, timeout=5,
               message="two re-asks counted")

    # A retry of the job resumes at the pitches, and a model that behaves again passes.
    assert api.http.post(f"/api/v1/jobs/{job_id}/retry", headers=session).status_code == 200
    retried = api.wait_for_status(job_id, session, {"succeeded", "failed"}, timeout=30)
    assert retried["status"] == "succeeded", retried
    assert_complete_analysis(retried["result"])


def test_a_blog_post_cut_off_is_asked_again(
        api: ApiClient, worker: ThreadWorker, fake_llm: FakeOpenAI,
        website: FakeWebsite) -> None:
    before = reasks("content", "truncated")
    user = api.bearer(api.register())
    organization_id = analysed_organization(api, website, user)
    fake_llm.answer_badly("chat:blog_post", "truncated")

    job_id = generate(api, user, generation_body(organization_id, includeVisuals=False,
                                                 autoSave=False, status="draft"))
    done = api.wait_for_status(job_id, user, {"succeeded", "failed"}, timeout=30)

    assert done["status"] == "succeeded", done
    post = done["result"]["data"]
    assert all(post[key] for key in ("title", "content", "excerpt", "tags", "seo"))
    assert fake_llm.calls("chat:blog_post") == 2
    wait_until(lambda: reasks("content", "truncated") == before + 1, timeout=5,
               message="the re-ask counted")
