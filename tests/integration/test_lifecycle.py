"""Retry, cancel, transient faults, fetch failures, timeouts and real concurrency."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from queue_jobs.config.settings import QueueSettings
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.website import FakeWebsite
from tests.integration.support import ApiClient, ThreadWorker, new_session, wait_until

TEXT_KINDS = ("chat:business_analysis", "chat:audiences", "chat:pitches")


def test_failure_at_images_then_retry_reruns_only_that_step(
        api: ApiClient, worker: ThreadWorker, fake_llm: FakeOpenAI,
        website: FakeWebsite) -> None:
    fake_llm.fail_next("images", 500, times=3)  # first try + 2 in-step retries
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    failed = api.wait_for_status(job_id, session, {"failed", "succeeded"})
    assert failed["status"] == "failed", failed
    assert failed["currentStep"] == "Generating images..."
    assert failed["errorCode"] == "LLM_ERROR" and failed["result"] is None
    assert failed["progress"] < 100
    text_calls = {kind: fake_llm.calls(kind) for kind in TEXT_KINDS}
    assert text_calls == dict.fromkeys(TEXT_KINDS, 1)
    assert fake_llm.calls("images") == 3

    response = api.http.post(f"/api/v1/jobs/{job_id}/retry", headers=session)
    assert response.status_code == 200 and response.get_json() == {"jobId": job_id}
    done = api.wait_for_status(job_id, session, {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    assert done["error"] is None and done["errorCode"] is None
    assert {kind: fake_llm.calls(kind) for kind in TEXT_KINDS} == text_calls
    assert fake_llm.calls("images") == 3 + len(done["result"]["scenarios"])
    again = api.http.post(f"/api/v1/jobs/{job_id}/retry", headers=session)
    assert again.status_code == 409 and again.get_json()["errorCode"] == "JOB_NOT_RETRYABLE"


def test_transient_llm_faults_are_retried_inside_the_step(
        api: ApiClient, worker: ThreadWorker, fake_llm: FakeOpenAI,
        website: FakeWebsite) -> None:
    fake_llm.fail_next("chat:business_analysis", 429)
    fake_llm.fail_next("chat:audiences", 503)
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    done = api.wait_for_status(job_id, session, {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    assert fake_llm.calls("chat:business_analysis") == 2
    assert fake_llm.calls("chat:audiences") == 2


def llm_call_errors(model: str, error_code: str) -> float:
    """llm_call_errors_total as this process counts it (the test worker runs in it)."""
    return REGISTRY.get_sample_value("llm_call_errors_total",
                                     {"model": model, "error_code": error_code}) or 0.0


def test_failed_llm_calls_are_counted_by_model_and_errorcode(
        api: ApiClient, worker: ThreadWorker, fake_llm: FakeOpenAI, website: FakeWebsite,
        settings: QueueSettings) -> None:
    """The 429s a step retried away still count: ops/prometheus/alerts.yml pages on them."""
    chat, image = settings.openai_model, settings.openai_image_model
    before = {(model, code): llm_call_errors(model, code) for model in (chat, image)
              for code in ("LLM_RATE_LIMITED", "LLM_ERROR")}
    fake_llm.fail_next("chat:business_analysis", 429)
    fake_llm.fail_next("chat:pitches", 429)
    fake_llm.fail_next("images", 500)
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    done = api.wait_for_status(job_id, session, {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    assert llm_call_errors(chat, "LLM_RATE_LIMITED") == before[chat, "LLM_RATE_LIMITED"] + 2
    assert llm_call_errors(image, "LLM_ERROR") == before[image, "LLM_ERROR"] + 1
    assert llm_call_errors(chat, "LLM_ERROR") == before[chat, "LLM_ERROR"]
    assert llm_call_errors(image, "LLM_RATE_LIMITED") == before[image, "LLM_RATE_LIMITED"]


def test_permanent_llm_errors_fail_at_once(
        api: ApiClient, worker: ThreadWorker, fake_llm: FakeOpenAI,
        website: FakeWebsite) -> None:
    fake_llm.fail_next("chat:business_analysis", 400)
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    done = api.wait_for_status(job_id, session, {"succeeded", "failed"})
    assert (done["status"], done["errorCode"]) == ("failed", "LLM_ERROR")
    assert done["currentStep"] == "Analyzing website..."
    assert fake_llm.calls("chat:business_analysis") == 1


def test_rate_limit_that_persists_fails_with_llm_rate_limited(
        api: ApiClient, worker: ThreadWorker, fake_llm: FakeOpenAI,
        website: FakeWebsite) -> None:
    fake_llm.fail_next("chat:audiences", 429, times=3)
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    done = api.wait_for_status(job_id, session, {"succeeded", "failed"})
    assert (done["status"], done["errorCode"]) == ("failed", "LLM_RATE_LIMITED")
    assert done["currentStep"] == "Generating audiences..."


def test_cancel_a_queued_job_is_immediate(api: ApiClient, website: FakeWebsite,
                                          db: psycopg.Connection[Any]) -> None:
    session = new_session()  # no worker running: the job stays queued
    job_id = api.create_analysis(website.url("/"), session)
    assert api.status(job_id, session)["currentStep"] is None
    response = api.http.post(f"/api/v1/jobs/{job_id}/cancel", headers=session)
    assert response.status_code == 200 and response.get_json() == {"cancelled": True}
    document = api.status(job_id, session)
    assert (document["status"], document["error"], document["errorCode"]) == (
        "failed", "Cancelled", "CANCELLED")
    dispatch = db.execute("SELECT pj.status FROM jobs j JOIN procrastinate_jobs pj "
                          "ON pj.id = j.dispatch_id WHERE j.id = %s", (job_id,)).fetchone()
    assert dispatch == ("cancelled",)
    again = api.http.post(f"/api/v1/jobs/{job_id}/cancel", headers=session)
    assert again.status_code == 409 and again.get_json()["errorCode"] == "JOB_NOT_CANCELLABLE"
    # A cancelled job is failed, so it can be retried: back to queued at once.
    assert api.http.post(f"/api/v1/jobs/{job_id}/retry", headers=session).status_code == 200
    requeued = api.status(job_id, session)
    assert (requeued["status"], requeued["error"]) == ("queued", None)


@pytest.mark.parametrize("slow_kind", ["chat:audiences", "images"])
def test_cancel_a_running_job_stops_it_mid_call_within_5s(
        api: ApiClient, worker: ThreadWorker, fake_llm: FakeOpenAI, website: FakeWebsite,
        slow_kind: str) -> None:
    fake_llm.set_delay(slow_kind, 30)
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    fake_llm.wait_for_calls(slow_kind, 1, timeout=15)
    assert api.status(job_id, session)["status"] == "running"
    started = time.monotonic()
    response = api.http.post(f"/api/v1/jobs/{job_id}/cancel", headers=session)
    assert response.status_code == 200
    done = api.wait_for_status(job_id, session, {"failed", "succeeded"}, timeout=5)
    elapsed = time.monotonic() - started
    assert (done["status"], done["errorCode"], done["error"]) == (
        "failed", "CANCELLED", "Cancelled")
    assert elapsed < 5


def test_cancel_a_running_job_stuck_in_a_slow_fetch(
        api: ApiClient, worker: ThreadWorker, website: FakeWebsite) -> None:
    website.set_slow("/slow", 30)
    session = new_session()
    job_id = api.create_analysis(website.url("/slow"), session)
    wait_until(lambda: website.hits("/slow") >= 1, message="fetch to start")
    assert api.http.post(f"/api/v1/jobs/{job_id}/cancel", headers=session).status_code == 200
    done = api.wait_for_status(job_id, session, {"failed", "succeeded"}, timeout=5)
    assert done["errorCode"] == "CANCELLED"


@pytest.mark.parametrize(("path", "code"), [
    ("/plain.txt", "INVALID_CONTENT"),
    ("/image.png", "INVALID_CONTENT"),
    ("/missing", "FETCH_FAILED"),
])
def test_unusable_pages_fail_at_once(api: ApiClient, worker: ThreadWorker,
                                     website: FakeWebsite, fake_llm: FakeOpenAI,
                                     path: str, code: str) -> None:
    session = new_session()
    job_id = api.create_analysis(website.url(path), session)
    done = api.wait_for_status(job_id, session, {"failed", "succeeded"})
    assert (done["status"], done["errorCode"]) == ("failed", code), done
    assert done["currentStep"] == "Analyzing website..."
    assert website.hits(path) == 1  # permanent: not retried
    assert fake_llm.calls("chat") == 0


def test_unresolvable_host_fails(api: ApiClient, worker: ThreadWorker) -> None:
    session = new_session()
    job_id = api.create_analysis("http://no-such-host.invalid/", session)
    done = api.wait_for_status(job_id, session, {"failed", "succeeded"})
    assert (done["status"], done["errorCode"]) == ("failed", "FETCH_FAILED")


def test_a_page_sent_one_byte_at_a_time_fails_at_the_fetch_deadline(
        api: ApiClient, settings: QueueSettings, website: FakeWebsite,
        fake_llm: FakeOpenAI) -> None:
    # A byte every 0.2 s never trips the 15 s read timeout; the whole page would take
    # about a minute. The deadline ends it, and a slow site is not retried.
    path = "/drip?every=0.2"
    with ThreadWorker(replace(settings, fetch_deadline_s=1.0)):
        session = new_session()
        started = time.monotonic()
        job_id = api.create_analysis(website.url(path), session)
        done = api.wait_for_status(job_id, session, {"failed", "succeeded"}, timeout=15)
        elapsed = time.monotonic() - started
    assert (done["status"], done["errorCode"]) == ("failed", "FETCH_FAILED"), done
    assert done["error"] == f"The website took longer than 1 s to send {website.url(path)}"
    assert elapsed < 10
    assert website.hits("/drip") == 1 and fake_llm.calls("chat") == 0


def test_huge_page_is_capped_and_still_analysed(
        api: ApiClient, worker: ThreadWorker, website: FakeWebsite) -> None:
    session = new_session()
    job_id = api.create_analysis(website.url("/huge"), session)
    done = api.wait_for_status(job_id, session, {"failed", "succeeded"})
    assert done["status"] == "succeeded", done


def test_loopback_is_blocked_when_private_networks_are_off(
        api: ApiClient, settings: QueueSettings, website: FakeWebsite) -> None:
    strict = replace(settings, fetch_allow_private=False)
    hits_before = website.hits("/")
    with ThreadWorker(strict):
        session = new_session()
        job_id = api.create_analysis(website.url("/"), session)
        done = api.wait_for_status(job_id, session, {"failed", "succeeded"})
    assert (done["status"], done["errorCode"]) == ("failed", "FETCH_BLOCKED")
    assert website.hits("/") == hits_before  # refused before connecting


def test_job_past_its_time_limit_fails_with_timeout(
        api: ApiClient, settings: QueueSettings, fake_llm: FakeOpenAI,
        website: FakeWebsite) -> None:
    fake_llm.set_delay("chat:business_analysis", 30)
    with ThreadWorker(replace(settings, job_timeout_s=1.5)):
        session = new_session()
        job_id = api.create_analysis(website.url("/"), session)
        done = api.wait_for_status(job_id, session, {"failed", "succeeded"}, timeout=10)
    assert (done["status"], done["errorCode"]) == ("failed", "TIMEOUT")


def test_concurrency_n_runs_n_jobs_at_once(
        api: ApiClient, settings: QueueSettings, fake_llm: FakeOpenAI,
        website: FakeWebsite, db: psycopg.Connection[Any]) -> None:
    # 10 > cpus + 4 (6 here): the cap a sync task would hit in procrastinate's executor.
    fake_llm.set_delay("chat:business_analysis", 2)
    user = api.token_for()  # a user may have 20 active jobs, a session only 5
    with ThreadWorker(settings, concurrency=10):
        for _ in range(10):
            api.create_analysis(website.url("/"), user)
        fake_llm.wait_for_calls("chat:business_analysis", 10, timeout=10)
        running = db.execute("SELECT count(*) FROM jobs WHERE status = 'running'").fetchone()
        assert running == (10,)
        fake_llm.reset()
