"""The ops API (/ops/api, webapp/views/ops_api.py) on the real database: every filter,
keyset pages while jobs keep arriving, a job's page after a real run (fake OpenAI server,
local website), retry and cancel of any owner's job, bulk actions (dry run, confirmed
run, the 409), prune, the audit trail, and every bad input answered with the envelope."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from queue_jobs.services.fair_use import FairUse
from tests.fakes.website import FakeWebsite
from tests.integration.support import ApiClient, ThreadWorker, new_session

OPS_TOKEN = "ops-api-test-token-0123456789abcdef"
OPS = {"Authorization": f"Bearer {OPS_TOKEN}", "X-Ops-Actor": "ada"}
NOW = datetime.now(UTC).replace(microsecond=0)
UNKNOWN = uuid.UUID("0197a3f2-0000-7000-8000-000000000000")  # fixed: xdist workers collect alike


@pytest.fixture
def ops(api_factory: Any) -> ApiClient:
    return api_factory(ops_token=OPS_TOKEN, fair_use=FairUse(
        max_active_per_session=3, max_active_per_user=20, creates_per_address_per_minute=0))


def insert_job(db: psycopg.Connection[Any], *, status: str = "succeeded",
               type_: str = "website-analysis", error_code: str | None = None,
               user_id: uuid.UUID | None = None, session_id: str | None = "sess_ops_api_1",
               created_at: datetime | None = None, finished_days_ago: int = 0,
               job_id: uuid.UUID | None = None) -> uuid.UUID:
    job_id = job_id or uuid.uuid4()
    finished = status in ("succeeded", "failed")
    db.execute(
        "INSERT INTO jobs (id, type, owner_user_id, owner_session_id, status, error, error_code,"
        " input, created_at, finished_at) VALUES (%s, %s, %s, %s, %s, %s, %s, '{}', %s, %s)",
        (job_id, type_, user_id, None if user_id else session_id, status,
         "boom" if status == "failed" else None, error_code, created_at or datetime.now(UTC),
         datetime.now(UTC) - timedelta(days=finished_days_ago) if finished else None))
    return job_id


def listed(ops: ApiClient, **query: str) -> list[str]:
    """Every job id the filter finds, following the cursor to the end."""
    found: list[str] = []
    cursor = None
    while True:
        response = ops.http.get("/ops/api/jobs", headers=OPS,
                                query_string={**query, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        found += [job["jobId"] for job in body["jobs"]]
        cursor = body["nextCursor"]
        if cursor is None:
            return found


def audit(db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return db.execute("SELECT actor, action, job_ids, job_count, filter, detail "
                      "FROM ops_audit ORDER BY id").fetchall()


# --- search -------------------------------------------------------------------------------------

def test_every_filter_alone_and_combined(ops: ApiClient, db: psycopg.Connection[Any]) -> None:
    user_id = uuid.uuid4()
    db.execute("INSERT INTO users (id, email, password_hash) VALUES (%s, 'ada@example.test', '-')",
               (user_id,))
    hour = timedelta(hours=1)
    old = insert_job(db, created_at=NOW - 48 * hour)
    failed = insert_job(db, status="failed", error_code="FETCH_FAILED", created_at=NOW - 3 * hour)
    llm = insert_job(db, status="failed", error_code="LLM_ERROR", type_="content-generation",
                     user_id=user_id, created_at=NOW - 2 * hour)
    queued = insert_job(db, status="queued", session_id="sess_ops_api_2", created_at=NOW - hour)
    running = insert_job(db, status="running", type_="content-generation", user_id=user_id,
                         created_at=NOW)
    every = [running, queued, llm, failed, old]  # newest first

    def ids(*jobs: uuid.UUID) -> list[str]:
        return [str(job) for job in jobs]

    assert listed(ops) == ids(*every)
    assert listed(ops, status="failed") == ids(llm, failed)
    assert listed(ops, status="queued") == ids(queued)
    assert listed(ops, type="content-generation") == ids(running, llm)
    assert listed(ops, errorCode="FETCH_FAILED") == ids(failed)
    assert listed(ops, owner=str(user_id)) == ids(running, llm)
    assert listed(ops, owner=f"user:{user_id}") == ids(running, llm)
    assert listed(ops, owner=" ADA@example.test ") == ids(running, llm)
    assert listed(ops, owner="nobody@example.test") == []
    assert listed(ops, owner="sess_ops_api_2") == ids(queued)
    assert listed(ops, owner="session:sess_ops_api_1") == ids(failed, old)
    assert listed(ops, createdFrom=(NOW - 3 * hour).isoformat(),
                  createdTo=(NOW - hour).isoformat()) == ids(llm, failed)
    assert listed(ops, createdFrom=(NOW - 49 * hour).strftime("%Y-%m-%dT%H:%M:%S"),
                  createdTo=(NOW - 47 * hour).isoformat().replace("+00:00", "Z")) == ids(old)
    assert listed(ops, idPrefix=str(queued)[:13]) == ids(queued)
    assert listed(ops, idPrefix=str(queued).replace("-", "")[:9].upper()) == ids(queued)
    assert listed(ops, status="failed", type="content-generation", owner=str(user_id),
                  errorCode="LLM_ERROR") == ids(llm)
    assert listed(ops, status="succeeded", errorCode="LLM_ERROR") == []

    counts = ops.http.get("/ops/api/jobs/counts", headers=OPS,
                          query_string={"owner": str(user_id)}).get_json()
    assert counts == {"counts": {"queued": 0, "running": 1, "succeeded": 0, "failed": 1},
                      "total": 2}
    page = ops.http.get("/ops/api/jobs", headers=OPS, query_string={"status": "failed"}).get_json()
    assert page["jobs"][0] == {
        "jobId": str(llm), "type": "content-generation", "status": "failed", "progress": 0,
        "currentStep": None, "errorCode": "LLM_ERROR", "attempt": 1,
        "owner": {"kind": "user", "id": str(user_id)}, "llmCalls": 0, "llmTokens": 0,
        "createdAt": (NOW - 2 * hour).isoformat().replace("+00:00", "Z"),
        "updatedAt": page["jobs"][0]["updatedAt"], "finishedAt": page["jobs"][0]["finishedAt"]}


def test_pages_have_no_duplicates_or_gaps_while_jobs_arrive(
        ops: ApiClient, db: psycopg.Connection[Any]) -> None:
    # Several jobs share a created_at: the id breaks the tie.
    first = [insert_job(db, created_at=NOW - timedelta(seconds=i // 3)) for i in range(25)]
    seen: list[str] = []
    cursor = None
    arrived = []
    for _ in range(10):
        query = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        body = ops.http.get("/ops/api/jobs", headers=OPS, query_string=query).get_json()
        seen += [job["jobId"] for job in body["jobs"]]
        arrived.append(insert_job(db))  # newer than every page
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert cursor is None
    assert len(seen) == len(set(seen)) == 25
    assert set(seen) == {str(job) for job in first}
    assert listed(ops)[:len(arrived)] == [str(job) for job in reversed(arrived)]


# --- a job's page -------------------------------------------------------------------------------

def test_the_page_of_a_job_that_ran(ops: ApiClient, worker: ThreadWorker,
                                    website: FakeWebsite, db: psycopg.Connection[Any]) -> None:
    session = new_session()
    job_id = ops.create_analysis(website.url("/"), session)
    owner_sees = ops.wait_for_status(job_id, session, {"succeeded"}, timeout=60)

    response = ops.http.get(f"/ops/api/jobs/{job_id}", headers=OPS)
    assert response.status_code == 200, response.get_json()
    page = response.get_json()
    assert page["job"]["jobId"] == job_id and page["job"]["status"] == "succeeded"
    assert page["job"]["input"] == {"url": website.url("/")}
    assert page["owner"] == {"kind": "session", "id": session["x-session-id"], "email": None}
    assert page["statusDocument"] == owner_sees
    steps = page["steps"]
    assert [step["step"] for step in steps] == ["analyze", "audiences", "pitches", "images"]
    assert all(step["outcome"] == "succeeded" and step["durationMs"] >= 0
               and step["attempt"] == 1 and step["reasks"] == 0 for step in steps)
    assert sum(step["llmCalls"] for step in steps) == page["job"]["llmCalls"] > 0
    assert sum(step["inputTokens"] + step["outputTokens"] for step in steps) \
        == page["job"]["llmTokens"]
    assert all(step["startedAt"] <= step["finishedAt"] for step in steps)
    image_urls = [image["url"] for image in page["images"]]
    assert image_urls and all(url == f"/api/v1/images/{image['id']}"
                              for url, image in zip(image_urls, page["images"], strict=True))
    assert set(image_urls) <= set(str(owner_sees["result"]).replace("'", " ").split())
    # procrastinate deletes a successful dispatch as it ends: none is left to show
    assert page["dispatches"] == []
    assert page["audit"] == []


def test_the_page_shows_dispatches_and_audit(ops: ApiClient) -> None:
    session = new_session()
    job_id = ops.create_analysis("https://example.com/", session)  # no worker: stays queued
    assert ops.http.post(f"/ops/api/jobs/{job_id}/cancel", headers=OPS).status_code == 200
    page = ops.http.get(f"/ops/api/jobs/{job_id}", headers=OPS).get_json()
    assert page["job"]["errorCode"] == "CANCELLED"
    assert [(d["status"], d["queue"]) for d in page["dispatches"]] == [("cancelled", "jobs")]
    assert [event["type"] for event in page["dispatches"][0]["events"]][:1] == ["deferred"]
    assert [(entry["actor"], entry["action"], entry.get("jobIds"))
            for entry in page["audit"]] == [("ada", "cancel", None)]
    assert page["statusDocument"]["status"] == "failed"


# --- one job ------------------------------------------------------------------------------------

def test_retry_and_cancel_any_owners_job(ops: ApiClient, db: psycopg.Connection[Any]) -> None:
    session = new_session()
    job_ids = [ops.create_analysis("https://example.com/", session) for _ in range(3)]
    # The session is at its limit (3 active): its owner may not retry another job...
    failed = insert_job(db, status="failed", error_code="FETCH_FAILED",
                        session_id=session["x-session-id"])
    refused = ops.http.post(f"/api/v1/jobs/{failed}/retry", headers=session)
    assert refused.status_code == 429, refused.get_json()
    # ... an operator may: a support person is not held to the user's quota.
    retried = ops.http.post(f"/ops/api/jobs/{failed}/retry", headers=OPS)
    assert retried.status_code == 200, retried.get_json()
    assert retried.get_json() == {"jobId": str(failed), "action": "retry", "actor": "ada"}
    assert ops.status(str(failed), session)["status"] == "queued"
    again = ops.http.post(f"/ops/api/jobs/{failed}/retry", headers=OPS)
    assert (again.status_code, again.get_json()["errorCode"]) == (409, "JOB_NOT_RETRYABLE")

    cancelled = ops.http.post(f"/ops/api/jobs/{job_ids[0]}/cancel",
                              headers={"Authorization": OPS["Authorization"]})
    assert cancelled.status_code == 200, cancelled.get_json()
    assert cancelled.get_json()["actor"] == "ops-token"
    document = ops.status(job_ids[0], session)
    assert (document["status"], document["errorCode"]) == ("failed", "CANCELLED")
    twice = ops.http.post(f"/ops/api/jobs/{job_ids[0]}/cancel", headers=OPS)
    assert (twice.status_code, twice.get_json()["errorCode"]) == (409, "JOB_NOT_CANCELLABLE")

    assert [(actor, action, ids, count) for actor, action, ids, count, _f, _d in audit(db)] == [
        ("ada", "retry", [failed], 1), ("ops-token", "cancel", [uuid.UUID(job_ids[0])], 1)]
    # The owner's own API keeps its rules: another session's job is still 404 to it.
    stranger = ops.http.post(f"/api/v1/jobs/{job_ids[1]}/cancel", headers=new_session())
    assert stranger.status_code == 404


# --- bulk ---------------------------------------------------------------------------------------

def test_bulk_retry_dry_run_then_confirmed_in_batches(
        ops: ApiClient, db: psycopg.Connection[Any]) -> None:
    matching = [insert_job(db, status="failed", error_code="FETCH_FAILED",
                           session_id=f"sess_bulk_{i % 7:03d}",
                           created_at=NOW - timedelta(seconds=i)) for i in range(450)]
    insert_job(db, status="failed", error_code="LLM_ERROR")  # another errorCode
    insert_job(db, status="succeeded", error_code=None)
    body = {"filter": {"errorCode": "FETCH_FAILED"}}

    dry = ops.http.post("/ops/api/jobs/retry", headers=OPS, json={**body, "dryRun": True})
    assert dry.status_code == 200, dry.get_json()
    assert dry.get_json() == {"action": "retry", "filter": {"errorCode": "FETCH_FAILED"},
                              "matching": 450, "dryRun": True, "byStatus": {"failed": 450}}
    assert audit(db) == []  # a dry run changes nothing

    # One more failure since the dry run: more match than confirmed, nothing is done.
    late = insert_job(db, status="failed", error_code="FETCH_FAILED")
    refused = ops.http.post("/ops/api/jobs/retry", headers=OPS, json={**body, "expect": 450})
    assert refused.status_code == 409
    assert refused.get_json()["errorCode"] == "MORE_JOBS_MATCH"
    assert refused.get_json()["error"].startswith("451 jobs match now")
    assert audit(db) == []

    run = ops.http.post("/ops/api/jobs/retry", headers=OPS, json={**body, "expect": 451})
    assert run.status_code == 200, run.get_json()
    report = run.get_json()
    assert (report["acted"], report["skipped"], report["batches"]) == (451, 0, 3)
    statuses = dict(db.execute("SELECT status, count(*) FROM jobs WHERE id = ANY(%s) "
                               "GROUP BY status", ([*matching, late],)).fetchall())
    assert statuses == {"queued": 451}
    rows = audit(db)
    assert [(actor, action, count) for actor, action, _ids, count, _f, _d in rows] == [
        ("ada", "bulk-retry", 200), ("ada", "bulk-retry", 200), ("ada", "bulk-retry", 51)]
    assert {job for row in rows for job in row[2]} == {*matching, late}
    assert all(row[4] == {"errorCode": "FETCH_FAILED"} for row in rows)
    assert [row[5]["batch"] for row in rows] == [1, 2, 3]
    assert {row[5]["bulkId"] for row in rows} == {report["bulkId"]}

    nothing = ops.http.post("/ops/api/jobs/retry", headers=OPS, json={**body, "dryRun": True})
    assert (nothing.status_code, nothing.get_json()["errorCode"]) == (404, "NO_MATCHING_JOBS")


def test_bulk_cancel_takes_queued_and_running_and_skips_what_changed(
        ops: ApiClient, db: psycopg.Connection[Any]) -> None:
    sessions = [new_session() for _ in range(2)]
    queued = [ops.create_analysis("https://example.com/", s) for s in sessions for _ in range(2)]
    insert_job(db, status="succeeded", session_id=sessions[0]["x-session-id"])
    body = {"filter": {"type": "website-analysis"}}
    dry = ops.http.post("/ops/api/jobs/cancel", headers=OPS, json={**body, "dryRun": True})
    assert dry.get_json()["byStatus"] == {"queued": 4, "running": 0}
    # One is cancelled by its owner between the dry run and the run.
    assert ops.http.post(f"/api/v1/jobs/{queued[0]}/cancel", headers=sessions[0]).status_code == 200
    run = ops.http.post("/ops/api/jobs/cancel", headers=OPS, json={**body, "expect": 4})
    assert run.status_code == 200, run.get_json()
    assert (run.get_json()["acted"], run.get_json()["skipped"]) == (3, 0)
    assert all(ops.status(job, sessions[i // 2])["errorCode"] == "CANCELLED"
               for i, job in enumerate(queued))
    for status in ("succeeded", "failed"):
        none = ops.http.post("/ops/api/jobs/cancel", headers=OPS,
                             json={"filter": {"status": status}, "dryRun": True})
        assert (none.status_code, none.get_json()["errorCode"]) == (404, "NO_MATCHING_JOBS")


# --- prune and the trail ------------------------------------------------------------------------

def test_prune_deletes_old_finished_jobs_and_the_trail_pages(
        ops: ApiClient, db: psycopg.Connection[Any]) -> None:
    old = insert_job(db, finished_days_ago=40)
    recent = insert_job(db, finished_days_ago=2)
    active = insert_job(db, status="queued")
    response = ops.http.post("/ops/api/prune", headers=OPS, json={"olderThanDays": 30})
    assert response.get_json() == {"deleted": 1, "olderThanDays": 30}
    left = {row[0] for row in db.execute("SELECT id FROM jobs")}
    assert old not in left and {recent, active} <= left
    assert ops.http.post("/ops/api/prune", headers=OPS,
                         json={"olderThanDays": 30}).get_json()["deleted"] == 0

    entries: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = ops.http.get("/ops/api/audit", headers=OPS, query_string=query).get_json()
        entries += page["entries"]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert [(e["action"], e["jobCount"], e["detail"]) for e in entries] == [
        ("prune", 0, {"olderThanDays": 30}), ("prune", 1, {"olderThanDays": 30})]
    assert entries[0]["id"] > entries[1]["id"]


# --- bad input ----------------------------------------------------------------------------------

# --- pausing a job type -----------------------------------------------------------------------

def test_pause_holds_new_jobs_resume_releases_them_both_audited(
        ops: ApiClient, db: psycopg.Connection[Any]) -> None:
    session = new_session()
    before = ops.create_analysis("https://example.com/", session)
    paused = ops.http.post("/ops/api/types/website-analysis/pause", headers=OPS,
                           json={"reason": "LLM provider down"})
    assert paused.status_code == 200, paused.get_json()
    assert paused.get_json() == {"type": "website-analysis", "changed": True, "heldBack": 1}
    again = ops.http.post("/ops/api/types/website-analysis/pause", headers=OPS,
                          json={"reason": "another reason"})
    assert again.get_json() == {"type": "website-analysis", "changed": False, "heldBack": 0}
    during = ops.create_analysis("https://example.com/", session)  # accepted, held

    types = {state["type"]: state for state in
             ops.http.get("/ops/api/types", headers=OPS).get_json()["types"]}
    assert types["website-analysis"] | {"pausedAt": None} == {
        "type": "website-analysis", "paused": True, "reason": "LLM provider down",
        "pausedBy": "ada", "pausedAt": None, "heldJobs": 2}
    assert types["website-analysis"]["pausedAt"]
    assert types["content-generation"] == {
        "type": "content-generation", "paused": False, "reason": None, "pausedBy": None,
        "pausedAt": None, "heldJobs": 0}
    for job_id in (before, during):
        document = ops.status(job_id, session)
        assert document["status"] == "queued"
        assert document["pausedReason"] == (
            "Website analysis is paused by an operator: LLM provider down")

    resumed = ops.http.post("/ops/api/types/website-analysis/resume", headers=OPS)
    assert resumed.get_json() == {"type": "website-analysis", "changed": True, "released": 2}
    assert ops.http.post("/ops/api/types/website-analysis/resume", headers=OPS).get_json() == {
        "type": "website-analysis", "changed": False, "released": 0}
    for job_id in (before, during):
        assert ops.status(job_id, session)["pausedReason"] is None
    dispatched = db.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' "
                            "AND args ->> 'job_id' = ANY(%s)",
                            ([str(before), str(during)],)).fetchone()
    assert dispatched == (2,)
    assert [(actor, action, count, detail) for actor, action, _ids, count, _f, detail
            in audit(db)] == [
        ("ada", "pause", 1, {"type": "website-analysis", "reason": "LLM provider down",
                             "changed": True}),
        ("ada", "pause", 0, {"type": "website-analysis", "reason": "another reason",
                             "changed": False}),
        ("ada", "resume", 2, {"type": "website-analysis", "changed": True}),
        ("ada", "resume", 0, {"type": "website-analysis", "changed": False})]


@pytest.fixture
def job_id(db: psycopg.Connection[Any]) -> Iterator[uuid.UUID]:
    yield insert_job(db)


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code"), [
    ("get", "/ops/api/jobs", {"query_string": {"colour": "red"}}, 400, "VALIDATION_ERROR"),
    ("get", "/ops/api/jobs", {"query_string": {"status": "stuck"}}, 400, "VALIDATION_ERROR"),
    ("get", "/ops/api/jobs", {"query_string": {"type": "x"}}, 400, "VALIDATION_ERROR"),
    ("get", "/ops/api/jobs", {"query_string": {"errorCode": "oops"}}, 400, "VALIDATION_ERROR"),
    ("get", "/ops/api/jobs", {"query_string": {"owner": "user:42"}}, 400, "VALIDATION_ERROR"),
    ("get", "/ops/api/jobs", {"query_string": {"owner": "short"}}, 400, "VALIDATION_ERROR"),
    ("get", "/ops/api/jobs", {"query_string": {"createdFrom": "yesterday"}}, 400,
     "VALIDATION_ERROR"),
    ("get", "/ops/api/jobs", {"query_string": {"idPrefix": "xyz"}}, 400, "VALIDATION_ERROR"),
    ("get", "/ops/api/jobs", {"query_string": {"limit": "0"}}, 400, "VALIDATION_ERROR"),
    ("get", "/ops/api/jobs", {"query_string": {"limit": "201"}}, 400, "VALIDATION_ERROR"),
    ("get", "/ops/api/jobs", {"query_string": {"cursor": "bm90IG91cnM"}}, 400, "CURSOR_INVALID"),
    ("get", "/ops/api/jobs", {"query_string": {"cursor": "%%%"}}, 400, "CURSOR_INVALID"),
    ("get", "/ops/api/audit", {"query_string": {"cursor": "WyJ4Il0"}}, 400, "CURSOR_INVALID"),
    ("get", "/ops/api/jobs/counts", {"query_string": {"status": "x"}}, 400, "VALIDATION_ERROR"),
    ("get", f"/ops/api/jobs/{UNKNOWN}", {}, 404, "JOB_NOT_FOUND"),
    ("get", "/ops/api/jobs/not-a-uuid", {}, 404, "NOT_FOUND"),
    ("get", "/ops/api/jobs/retry", {}, 405, "METHOD_NOT_ALLOWED"),
    ("post", f"/ops/api/jobs/{UNKNOWN}/retry", {}, 404, "JOB_NOT_FOUND"),
    ("post", f"/ops/api/jobs/{UNKNOWN}/cancel", {}, 404, "JOB_NOT_FOUND"),
    ("post", "/ops/api/jobs/retry", {"json": {"filter": {}}}, 400, "VALIDATION_ERROR"),
    ("post", "/ops/api/jobs/retry", {"json": {"filter": {}, "dryRun": True, "expect": 3}},
     400, "VALIDATION_ERROR"),
    ("post", "/ops/api/jobs/retry", {"json": {"filter": {"bogus": "1"}, "dryRun": True}}, 400,
     "VALIDATION_ERROR"),
    ("post", "/ops/api/jobs/cancel", {"json": {"filter": {"status": "failed"}, "expect": 0}},
     400, "VALIDATION_ERROR"),
    ("post", "/ops/api/jobs/cancel", {"data": "not json"}, 400, "VALIDATION_ERROR"),
    ("post", "/ops/api/jobs/retry", {"json": {"filter": {"owner": "nobody@example.test"},
                                              "dryRun": True}}, 404, "NO_MATCHING_JOBS"),
    ("post", "/ops/api/jobs/retry", {"json": {"filter": {"owner": "nobody@example.test"},
                                              "expect": 5}}, 404, "NO_MATCHING_JOBS"),
    ("post", "/ops/api/prune", {"json": {"olderThanDays": -1}}, 400, "VALIDATION_ERROR"),
    ("post", "/ops/api/types/video-editing/pause", {"json": {}}, 404, "JOB_TYPE_NOT_FOUND"),
    ("post", "/ops/api/types/video-editing/resume", {}, 404, "JOB_TYPE_NOT_FOUND"),
    ("post", "/ops/api/types/website-analysis/pause", {"json": {"reason": "x" * 201}}, 400,
     "VALIDATION_ERROR"),
    ("post", "/ops/api/types/website-analysis/pause", {"json": {"reason": "a\u0007b"}}, 400,
     "VALIDATION_ERROR"),
    ("post", "/ops/api/types/website-analysis/pause", {"data": "not json"}, 400,
     "VALIDATION_ERROR"),
    ("post", "/ops/api/prune", {"json": {}}, 400, "VALIDATION_ERROR"),
])
def test_bad_input_gets_the_envelope(ops: ApiClient, job_id: uuid.UUID, method: str, path: str,
                                     kwargs: dict[str, Any], status: int, code: str) -> None:
    response = getattr(ops.http, method)(path, headers=OPS, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["errorCode"] == code and body["error"]
    if code not in ("NOT_FOUND", "METHOD_NOT_ALLOWED"):  # answered before any view: no hooks
        assert response.headers["Cache-Control"] == "no-store"


def test_a_bad_actor_a_bad_token_or_no_token_configured(
        ops: ApiClient, api_factory: Any, job_id: uuid.UUID) -> None:
    for actor in ("", "ada lovelace", "x" * 65, "-dash", "émile"):
        response = ops.http.post(f"/ops/api/jobs/{job_id}/retry",
                                 headers={**OPS, "X-Ops-Actor": actor})
        assert (response.status_code, response.get_json()["errorCode"]) == (
            400, "VALIDATION_ERROR"), actor
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": OPS_TOKEN}):
        response = ops.http.get("/ops/api/jobs", headers=headers)
        assert (response.status_code, response.get_json()["errorCode"]) == (
            401, "OPS_TOKEN_INVALID")
    unconfigured = api_factory(ops_token=None)
    response = unconfigured.http.get("/ops/api/jobs", headers=OPS)
    assert (response.status_code, response.get_json()["errorCode"]) == (404, "NOT_FOUND")
