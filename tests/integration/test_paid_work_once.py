"""No paid work done twice: an images step cut short resumes with only the missing images,
leaves no image row its result does not use, and every answered LLM call is recorded
(the job's llm_calls and the daily rollup) however its run ended.

A worker killed mid-step is in test_worker_crash.py (it needs worker subprocesses).
"""

from __future__ import annotations

from typing import Any

import psycopg

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.website import FakeWebsite
from tests.integration.support import (
    ApiClient,
    ThreadWorker,
    image_ids_in,
    image_ids_of_job,
    new_session,
    recorded_llm_calls,
    wait_until,
)


def _answered(fake_llm: FakeOpenAI) -> int:
    return fake_llm.answered("chat") + fake_llm.answered("images")


def test_a_transient_failure_mid_images_retries_only_the_missing_ones(
        api: ApiClient, worker: ThreadWorker, fake_llm: FakeOpenAI, website: FakeWebsite,
        db: psycopg.Connection[Any]) -> None:
    session = new_session()
    fake_llm.fail_next("images", 500, after=1)  # the second image fails; the runner retries
    job_id = api.create_analysis(website.url("/"), session)
    done = api.wait_for_status(job_id, session, {"succeeded", "failed"}, timeout=30)
    assert done["status"] == "succeeded", done
    scenarios = len(done["result"]["scenarios"])

    # The first image was kept when it was made: the retried step drew the others only.
    assert fake_llm.answered("images") == scenarios
    assert fake_llm.calls("images") == scenarios + 1  # and the one that failed
    assert image_ids_of_job(db, job_id) == image_ids_in(done["result"])
    assert len(image_ids_in(done["result"])) == scenarios
    assert recorded_llm_calls(db, job_id) == (_answered(fake_llm), _answered(fake_llm))


def test_a_job_retried_after_failing_mid_images_pays_only_for_the_missing_ones(
        api: ApiClient, worker: ThreadWorker, fake_llm: FakeOpenAI, website: FakeWebsite,
        db: psycopg.Connection[Any]) -> None:
    session = new_session()
    fake_llm.fail_next("images", 400, after=1)  # refused for good: the job fails there
    job_id = api.create_analysis(website.url("/"), session)
    failed = api.wait_for_status(job_id, session, {"succeeded", "failed"}, timeout=30)
    assert failed["status"] == "failed", failed
    assert len(image_ids_of_job(db, job_id)) == 1  # kept for the retry, not drawn again
    assert recorded_llm_calls(db, job_id) == (_answered(fake_llm), _answered(fake_llm))

    assert api.http.post(f"/api/v1/jobs/{job_id}/retry", headers=session).status_code == 200
    done = api.wait_for_status(job_id, session, {"succeeded", "failed"}, timeout=30)
    assert done["status"] == "succeeded", done
    scenarios = len(done["result"]["scenarios"])
    assert fake_llm.answered("images") == scenarios
    assert image_ids_of_job(db, job_id) == image_ids_in(done["result"])
    assert recorded_llm_calls(db, job_id) == (_answered(fake_llm), _answered(fake_llm))
    # The step records keep their meaning: each run of a step with the calls it made.
    steps = db.execute("SELECT step, outcome, llm_calls FROM job_steps WHERE job_id = %s "
                       "AND step = 'images' ORDER BY id", (job_id,)).fetchall()
    assert steps == [("images", "failed", 1), ("images", "succeeded", scenarios - 1)]


def test_a_call_returning_to_a_cancelled_run_is_recorded_and_its_image_not_kept(
        api: ApiClient, worker: ThreadWorker, fake_llm: FakeOpenAI, website: FakeWebsite,
        db: psycopg.Connection[Any]) -> None:
    session = new_session()
    fake_llm.set_delay("images", 2, after=1)  # the second image is still being drawn ...
    job_id = api.create_analysis(website.url("/"), session)
    fake_llm.wait_for_calls("images", 2, timeout=30)
    # ... when the job is cancelled: the run is fenced out at once.
    response = api.http.post(f"/api/v1/jobs/{job_id}/cancel", headers=session)
    assert response.status_code == 200, response.get_json()
    done = api.wait_for_status(job_id, session, {"succeeded", "failed"}, timeout=10)
    assert done["errorCode"] == "CANCELLED", done
    # The drawing is paid for once it is answered: it counts, the image is refused.
    wait_until(lambda: fake_llm.answered("images") == 2, timeout=10, message="the answer")
    wait_until(lambda: recorded_llm_calls(db, job_id) == (_answered(fake_llm),) * 2,
               timeout=10, message="the late call recorded")
    parts = db.execute("SELECT step_parts FROM jobs WHERE id = %s", (job_id,)).fetchone()
    assert parts is not None and list(parts[0]["images"]) == ["0"]
    assert image_ids_of_job(db, job_id) == {
        url.removeprefix("/api/v1/images/") for url in parts[0]["images"].values()}
