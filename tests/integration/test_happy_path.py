"""The whole website-analysis flow: API, real worker, real openai client, local site."""

from __future__ import annotations

from typing import Any

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.website import FakeWebsite
from tests.integration.support import ApiClient, ThreadWorker, new_session, wait_until

STEP_LABELS = ["Analyzing website...", "Generating audiences...", "Generating pitches...",
               "Generating images..."]


def test_job_walks_every_step_and_returns_the_sync_body(
        api: ApiClient, worker: ThreadWorker, fake_llm: FakeOpenAI,
        website: FakeWebsite) -> None:
    # Slow each LLM call a little so the poller sees every step.
    for kind in ("chat", "images"):
        fake_llm.set_delay(kind, 0.3)
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)

    seen: list[dict[str, Any]] = []

    def finished() -> bool:
        document = api.status(job_id, session)
        seen.append(document)
        return document["status"] in ("succeeded", "failed")

    wait_until(finished, timeout=30, interval=0.02, message="job to finish")
    final = seen[-1]
    assert final["status"] == "succeeded", final
    steps = [doc["currentStep"] for doc in seen if doc["status"] == "running"]
    assert [label for label in STEP_LABELS if label in steps] == STEP_LABELS
    assert steps == sorted(steps, key=STEP_LABELS.index)  # never goes back
    progress = [doc["progress"] for doc in seen]
    assert progress == sorted(progress) and final["progress"] == 100
    assert all(doc["progress"] < 100 for doc in seen if doc["status"] != "succeeded")
    assert all(doc["estimatedTimeRemaining"] is None or doc["estimatedTimeRemaining"] >= 1
               for doc in seen)
    assert final["estimatedTimeRemaining"] is None and final["error"] is None

    result = final["result"]
    assert result["success"] is True
    assert result["url"] == website.url("/")
    assert set(result["analysis"]) == {"businessName", "businessType", "industry",
                                       "description", "targetAudience", "brandVoice",
                                       "keywords"}
    assert 2 <= len(result["scenarios"]) <= 5
    assert {cta["text"] for cta in result["ctas"]} >= {"Book a demo", "Contact us"}
    assert result["metadata"]["provider"] == "openai"
    assert result["metadata"]["durationMs"] > 0
    for scenario in result["scenarios"]:
        assert set(scenario) == {"id", "audience", "pitch", "imageUrl"}
        image = api.http.get(scenario["imageUrl"], headers=session)
        assert image.status_code == 200
        assert image.mimetype == "image/png" and image.data.startswith(b"\x89PNG")
    assert fake_llm.calls("images") == len(result["scenarios"])


def test_status_etag_answers_304_until_the_document_changes(
        api: ApiClient, website: FakeWebsite) -> None:
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    first = api.http.get(f"/api/v1/jobs/{job_id}/status", headers=session)
    etag = first.headers["ETag"]
    again = api.http.get(f"/api/v1/jobs/{job_id}/status",
                         headers={**session, "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert api.http.post(f"/api/v1/jobs/{job_id}/cancel", headers=session).status_code == 200
    changed = api.http.get(f"/api/v1/jobs/{job_id}/status",
                           headers={**session, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_a_finished_job_is_revalidated_by_its_row_version(
        api: ApiClient, website: FakeWebsite) -> None:
    """A finished job's ETag names its row version, so a poll that has it is answered 304
    without the result being read; a retry (a new version) gets the whole document."""
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    assert api.http.post(f"/api/v1/jobs/{job_id}/cancel", headers=session).status_code == 200
    url = f"/api/v1/jobs/{job_id}/status"
    first = api.http.get(url, headers=session)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('"f')
    assert api.http.get(url, headers=session).data == first.data  # the same bytes each time
    for tags in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        again = api.http.get(url, headers={**session, "If-None-Match": tags})
        assert (again.status_code, again.data, again.headers["ETag"]) == (304, b"", etag), tags
    stranger = api.http.get(url, headers={**new_session(), "If-None-Match": etag})
    assert stranger.status_code == 404  # the tag reveals nothing to anyone else
    assert api.http.post(f"/api/v1/jobs/{job_id}/retry", headers=session).status_code == 200
    retried = api.http.get(url, headers={**session, "If-None-Match": etag})
    assert retried.status_code == 200 and retried.get_json()["status"] == "queued"
    assert retried.headers["ETag"] != etag


def test_list_shows_own_jobs_newest_first_without_results(
        api: ApiClient, website: FakeWebsite) -> None:
    session, stranger = new_session(), new_session()
    first = api.create_analysis(website.url("/"), session)
    second = api.create_analysis(website.url("/demo"), session)
    api.create_analysis(website.url("/"), stranger)
    listing = api.http.get("/api/v1/jobs?limit=10", headers=session).get_json()
    assert [job["jobId"] for job in listing["jobs"]] == [second, first]
    assert all("result" not in job and job["status"] == "queued" for job in listing["jobs"])
    queued = api.http.get("/api/v1/jobs?status=failed", headers=session).get_json()
    assert queued["jobs"] == []
