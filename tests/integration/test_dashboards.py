"""Every ops/dashboards/*.sql runs against a real database and says the right thing: on
rows seeded by hand here, and on the records a real job run leaves behind."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from queue_jobs.observability.dashboards import DASHBOARD_DIR, by_name, dashboards
from tests.fakes.openai_server import IMAGE_OUTPUT_TOKENS, FakeOpenAI
from tests.fakes.website import FakeWebsite
from tests.integration.support import ApiClient, ThreadWorker, new_session

# In the order an on-call person asks (each file's `-- order:`), not the files' names.
EXPECTED = ["summary", "queue_depth", "live_workers", "throughput", "failure_rate",
            "stuck_jobs", "step_durations", "llm_usage", "usage_per_owner"]


def seed(db: psycopg.Connection[Any], *, status: str, owner: str = "sess_dash_a",
         type_: str = "website-analysis", error_code: str | None = None,
         durations: dict[str, int] | None = None, age: str = "1 minute",
         silent: str = "1 second") -> uuid.UUID:
    """A job row as its life would leave it, and a step record per entry of `durations`."""
    job_id = uuid.uuid4()
    finished = status in ("succeeded", "failed")
    db.execute(
        "INSERT INTO jobs (id, type, owner_session_id, input, status, error_code, "
        "step_durations_ms, created_at, updated_at, run_started_at, finished_at) VALUES "
        "(%s, %s, %s, '{}', %s, %s, %s, now() - %s::interval, now() - %s::interval, "
        "CASE WHEN %s <> 'queued' THEN now() - %s::interval END, "
        "CASE WHEN %s THEN now() - %s::interval END)",
        (job_id, type_, owner, status, error_code, json.dumps(durations or {}), age, silent,
         status, age, finished, silent))
    for step, duration_ms in (durations or {}).items():
        db.execute("SELECT jobs_record_step(%s, %s, 1, %s, 'succeeded', %s, '[]')",
                   (job_id, type_, step, duration_ms))
    db.execute("UPDATE job_steps SET finished_at = now() - %s::interval WHERE job_id = %s",
               (silent, job_id))
    return job_id


def run(db: psycopg.Connection[Any], name: str) -> list[dict[str, Any]]:
    with db.cursor(row_factory=dict_row) as cur:
        cur.execute((DASHBOARD_DIR / f"{name}.sql").read_bytes())
        return cur.fetchall()


@pytest.fixture
def seeded(db: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    seed(db, status="queued", age="20 minutes", silent="20 minutes")  # stuck in the queue
    seed(db, status="running", silent="10 minutes")  # stuck running
    seed(db, status="running", type_="content-generation")
    for content_ms in (1000, 2000, 3000, 4000):
        seed(db, status="succeeded", type_="content-generation", owner="sess_dash_b",
             durations={"content": content_ms, "visuals": 500, "save": 10})
    seed(db, status="failed", error_code="LLM_ERROR")
    seed(db, status="failed", error_code="CANCELLED")
    seed(db, status="succeeded", durations={"analyze": 100})
    seed(db, status="succeeded", durations={"analyze": 999_999}, age="2 days",
         silent="2 days")  # outside every window
    return db


def test_every_dashboard_file_is_known_has_a_header_and_runs(
        seeded: psycopg.Connection[Any]) -> None:
    assert [dashboard.name for dashboard in dashboards()] == EXPECTED
    for dashboard in dashboards():
        assert dashboard.title and dashboard.description, dashboard.name
        with seeded.cursor() as cur:
            cur.execute(dashboard.sql.encode())  # one plain SELECT that PostgreSQL accepts
            columns = [column.name for column in cur.description or ()]
        assert set(dashboard.series) <= set(columns), dashboard.name
        assert set(dashboard.columns) <= set(columns), dashboard.name  # declared ones
        if dashboard.chart in ("time-series", "bars"):  # what they draw against
            assert columns[0] == {"time-series": "time", "bars": "label"}[dashboard.chart], (
                dashboard.name)


def test_queue_depth_and_stuck_jobs(seeded: psycopg.Connection[Any]) -> None:
    depth = {row["type"]: row for row in run(seeded, "queue_depth")}
    assert (depth["website-analysis"]["queued"], depth["website-analysis"]["running"]) == (1, 1)
    assert depth["website-analysis"]["oldest_queued_s"] >= 20 * 60 - 5
    assert (depth["content-generation"]["queued"], depth["content-generation"]["running"]) == (
        0, 1)
    stuck = run(seeded, "stuck_jobs")
    assert sorted(row["status"] for row in stuck) == ["queued", "running"]


def test_throughput_lists_every_minute_of_the_hour(seeded: psycopg.Connection[Any]) -> None:
    minutes = run(seeded, "throughput")
    assert len(minutes) == 60
    assert [row["time"] for row in minutes] == sorted(row["time"] for row in minutes)
    totals = {column: sum(row[column] for row in minutes)
              for column in ("created", "started", "finished")}
    # created within the hour: all but the 20-minute-old queued one... which is within too;
    # not the 2-day-old one. Started: all but the queued one. Finished: the 7 recent ones.
    assert totals == {"created": 10, "started": 9, "finished": 7}


def test_failure_rate_and_step_durations(seeded: psycopg.Connection[Any]) -> None:
    failures = {row["error_code"]: row for row in run(seeded, "failure_rate")}
    assert set(failures) == {"LLM_ERROR", "CANCELLED"}
    assert float(failures["LLM_ERROR"]["share_of_finished"]) == pytest.approx(1 / 3, abs=1e-4)
    steps = {(row["type"], row["step"]): row for row in run(seeded, "step_durations")}
    content = steps[("content-generation", "content")]
    assert (content["runs"], content["p50_ms"], content["p95_ms"]) == (4, 2000, 4000)
    # the 2-day-old run is outside the window
    assert (steps[("website-analysis", "analyze")]["runs"],
            steps[("website-analysis", "analyze")]["p95_ms"]) == (1, 100)


def test_summary_is_one_row_of_the_five_numbers(seeded: psycopg.Connection[Any]) -> None:
    seeded.execute("INSERT INTO procrastinate_workers DEFAULT VALUES")
    seeded.execute("INSERT INTO procrastinate_workers (last_heartbeat) "
                   "VALUES (now() - interval '5 minutes')")  # lost: not live
    seed(seeded, status="failed", error_code="FETCH_FAILED", silent="2 hours")  # too old
    [summary] = run(seeded, "summary")
    assert summary["oldest_queued_s"] >= 20 * 60 - 5
    # The cancel is not a failure; the LLM_ERROR one is.
    assert {**summary, "oldest_queued_s": None} == {
        "queued": 1, "running": 2, "oldest_queued_s": None, "failed_last_hour": 1,
        "live_workers": 1}


def test_summary_of_an_empty_service(db: psycopg.Connection[Any]) -> None:
    assert run(db, "summary") == [{"queued": 0, "running": 0, "oldest_queued_s": None,
                                   "failed_last_hour": 0, "live_workers": 0}]


def test_summary_reads_indexes_not_the_whole_table(db: psycopg.Connection[Any]) -> None:
    """Many finished jobs over 30 days and a few active ones: the plan reads the partial
    index of active jobs and one hour of jobs_finished_idx, never every row."""
    db.execute(
        "INSERT INTO jobs (id, type, owner_session_id, input, status, error_code, "
        "created_at, updated_at, finished_at) "
        "SELECT gen_random_uuid(), 'website-analysis', 'sess_dash_many', '{}', "
        "CASE WHEN n % 10 = 0 THEN 'failed' ELSE 'succeeded' END, "
        "CASE WHEN n % 10 = 0 THEN 'LLM_ERROR' END, at, at, at "
        "FROM generate_series(1, 30000) AS n, "
        "LATERAL (SELECT now() - n * interval '86 seconds' AS at) AS t")
    for status in ("queued", "running"):
        seed(db, status=status)
    db.execute("VACUUM ANALYZE jobs")
    sql = by_name("summary")
    assert sql is not None
    [[plan]] = db.execute(b"EXPLAIN (FORMAT JSON) " + sql.sql.encode()).fetchall()
    nodes = list(_plan_nodes(plan[0]["Plan"]))
    reads = {(node["Node Type"], node.get("Index Name")) for node in nodes
             if node.get("Relation Name") == "jobs"}
    assert reads == {("Index Scan", "jobs_active_idx"),
                     ("Index Only Scan", "jobs_finished_idx")}, reads
    [[failed]] = db.execute(
        "SELECT count(*) FROM jobs WHERE status = 'failed' "
        "AND finished_at > now() - interval '1 hour'").fetchall()
    assert run(db, "summary")[0]["failed_last_hour"] == failed > 0


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)


def shown_session(session_id: str) -> str:
    """How usage_per_owner names a session: a short hash, never the id (a credential)."""
    return "session:" + hashlib.sha256(session_id.encode()).hexdigest()[:12]


def test_usage_per_owner(seeded: psycopg.Connection[Any]) -> None:
    rows = run(seeded, "usage_per_owner")
    usage = {row["owner"]: row for row in rows}
    a, b = usage[shown_session("sess_dash_a")], usage[shown_session("sess_dash_b")]
    assert (a["created"], a["active"], a["failed"]) == (6, 3, 2)
    assert b["owner_kind"] == "session" and b["created"] == 4
    assert not any("sess_dash" in str(value) for row in rows for value in row.values())


def test_live_workers(db: psycopg.Connection[Any]) -> None:
    fresh = db.execute("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id").fetchone()
    stale = db.execute("INSERT INTO procrastinate_workers (last_heartbeat) "
                       "VALUES (now() - interval '5 minutes') RETURNING id").fetchone()
    assert fresh and stale
    db.execute("INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, worker_id) "
               "VALUES ('jobs', 'run_job', '{}', 'doing', %s)", (fresh[0],))
    workers = {row["worker_id"]: row for row in run(db, "live_workers")}
    assert (workers[fresh[0]]["alive"], workers[fresh[0]]["running_jobs"]) == (True, 1)
    assert workers[stale[0]]["alive"] is False
    assert workers[stale[0]]["heartbeat_age_s"] >= 300


def test_a_real_run_leaves_step_records_and_llm_usage(
        db: psycopg.Connection[Any], api: ApiClient, worker: ThreadWorker,
        fake_llm: FakeOpenAI, website: FakeWebsite) -> None:
    session = new_session()
    # A transient 500 is retried inside the step (the failed call is not counted: only
    # answered calls are); a 400 on the first image fails the images step, then the API
    # retry resumes there.
    fake_llm.fail_next("chat:audiences", 500)
    fake_llm.fail_next("images", 400)
    job_id = api.create_analysis(website.url("/"), session)
    failed = api.wait_for_status(job_id, session, {"succeeded", "failed"}, timeout=30)
    assert failed["status"] == "failed", failed
    assert api.http.post(f"/api/v1/jobs/{job_id}/retry", headers=session).status_code == 200
    done = api.wait_for_status(job_id, session, {"succeeded", "failed"}, timeout=30)
    assert done["status"] == "succeeded", done
    scenarios = len(done["result"]["scenarios"])

    steps = db.execute("SELECT step, outcome, attempt, llm_calls, input_tokens > 0, "
                       "output_tokens FROM job_steps WHERE job_id = %s ORDER BY id",
                       (job_id,)).fetchall()
    assert [row[:4] for row in steps] == [
        ("analyze", "succeeded", 1, 1), ("audiences", "succeeded", 1, 1),
        ("pitches", "succeeded", 1, 1), ("images", "failed", 1, 0),
        ("images", "succeeded", 2, scenarios)]
    assert steps[-1][4:] == (True, IMAGE_OUTPUT_TOKENS * scenarios)
    job = db.execute("SELECT llm_calls, llm_tokens FROM jobs WHERE id = %s",
                     (job_id,)).fetchone()
    assert job is not None and job[0] == 3 + scenarios and job[1] > 0

    usage = {(row["model"], row["type"]): row for row in run(db, "llm_usage")}
    assert usage[("gpt-4.1-mini", "website-analysis")]["calls"] == 3
    assert usage[("gpt-image-1", "website-analysis")]["output_tokens"] == (
        IMAGE_OUTPUT_TOKENS * scenarios)
    owner = {row["owner"]: row for row in run(db, "usage_per_owner")}[
        shown_session(session["x-session-id"])]
    assert (owner["created"], owner["llm_calls"], owner["llm_tokens"]) == (1, job[0], job[1])
    durations = {row["step"] for row in run(db, "step_durations")}
    assert durations == {"analyze", "audiences", "pitches", "images"}
    assert by_name("step_durations") is not None
