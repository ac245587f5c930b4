"""jobs-admin (queue_jobs/admin/main.py) against the test database: called in-process as
main(argv), and once as the installed console script in a subprocess. The same services
and audit trail as the ops API (tests/integration/test_ops_api.py)."""

from __future__ import annotations

import getpass
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from queue_jobs.admin import main as admin
from tests.integration.support import ApiClient, new_session
from tests.integration.test_ops_api import insert_job


@pytest.fixture(autouse=True)
def database(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", db_url)
    return db_url


def run(*argv: str, answer: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        code = admin.main(list(argv), stdin=io.StringIO(answer), stdout=out, stderr=err)
    except SystemExit as exit_:  # argparse's usage errors
        code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def me() -> str:
    return f"cli:{getpass.getuser()}"


def test_list_and_show_as_a_table_and_as_json(db: psycopg.Connection[Any]) -> None:
    failed = insert_job(db, status="failed", error_code="FETCH_FAILED")
    insert_job(db, status="succeeded")

    code, out, _ = run("list", "--status", "failed")
    assert code == 0
    header, row = out.splitlines()
    assert header.split()[:3] == ["JOB", "TYPE", "STATUS"]
    assert row.split()[:3] == [str(failed), "website-analysis", "failed"]
    assert "FETCH_FAILED" in row and "session:sess_ops_api_1" in row

    code, out, _ = run("--json", "list", "--error-code", "FETCH_FAILED")
    assert code == 0 and [job["jobId"] for job in json.loads(out)["jobs"]] == [str(failed)]

    code, out, _ = run("list", "--limit", "1")
    assert code == 0 and "more: --cursor " in out
    cursor = out.split("--cursor ")[1].strip()
    code, out, _ = run("--json", "list", "--limit", "1", "--cursor", cursor)
    assert code == 0 and json.loads(out)["nextCursor"] is None

    code, out, _ = run("show", str(failed))
    assert code == 0
    assert "jobId: " + str(failed) in out and "errorCode: FETCH_FAILED" in out
    assert "owner: session:sess_ops_api_1" in out
    code, out, _ = run("--json", "show", str(failed))
    assert json.loads(out)["job"]["status"] == "failed"


def test_retry_and_cancel_one_with_the_audit_trail(api: ApiClient,
                                                   db: psycopg.Connection[Any]) -> None:
    failed = insert_job(db, status="failed", error_code="FETCH_FAILED")
    session = new_session()
    queued = api.create_analysis("https://example.com/", session)

    assert run("retry", str(failed))[:2] == (0, f"retry: {failed}\n")
    code, _, err = run("retry", str(failed))
    assert code == 1 and "Only a failed job can be retried" in err
    code, out, _ = run("--json", "cancel", queued)
    assert code == 0 and json.loads(out) == {"jobId": queued, "action": "cancel",
                                              "actor": me()}
    assert api.status(queued, session)["errorCode"] == "CANCELLED"
    code, _, err = run("cancel", str(uuid.uuid4()))
    assert code == 1 and "Job not found" in err

    rows = db.execute("SELECT actor, action, job_ids FROM ops_audit ORDER BY id").fetchall()
    assert rows == [(me(), "retry", [failed]), (me(), "cancel", [uuid.UUID(queued)])]


def test_bulk_asks_for_the_count_or_takes_yes_and_expect(db: psycopg.Connection[Any]) -> None:
    jobs = [insert_job(db, status="failed", error_code="LLM_ERROR") for _ in range(3)]

    code, out, err = run("retry", "--error-code", "LLM_ERROR", answer="2\n")
    assert code == 1 and "3 jobs match (3 failed). Type 3 to retry them" in out
    assert "not confirmed" in err
    code, out, _ = run("retry", "--error-code", "LLM_ERROR", answer="3\n")
    assert code == 0 and "retry: 3 jobs, 0 skipped" in out
    assert {row[0] for row in db.execute("SELECT status FROM jobs WHERE id = ANY(%s)",
                                         (jobs,))} == {"queued"}

    more = [insert_job(db, status="failed", error_code="LLM_ERROR") for _ in range(2)]
    code, _, err = run("retry", "--error-code", "LLM_ERROR", "--yes", "--expect", "1")
    assert code == 1 and "2 jobs match now, more than the 1 you confirmed" in err
    code, out, _ = run("--json", "retry", "--error-code", "LLM_ERROR", "--yes", "--expect", "2")
    assert code == 0 and json.loads(out)["acted"] == 2
    code, _, err = run("retry", "--error-code", "LLM_ERROR", "--yes", "--expect", "2")
    assert code == 1 and "No job matches" in err

    actions = db.execute("SELECT action, job_count, actor FROM ops_audit ORDER BY id").fetchall()
    assert actions == [("bulk-retry", 3, me()), ("bulk-retry", 2, me())]
    assert more


def test_prune(db: psycopg.Connection[Any]) -> None:
    old = insert_job(db, finished_days_ago=10)
    code, out, _ = run("prune", "--older-than-days", "7")
    assert (code, out) == (0, "deleted 1 finished jobs older than 7 days\n")
    assert db.execute("SELECT 1 FROM jobs WHERE id = %s", (old,)).fetchone() is None


def test_types_pause_and_resume_with_the_audit_trail(db: psycopg.Connection[Any]) -> None:
    queued = insert_job(db, status="queued", type_="content-generation")
    code, out, _ = run("pause", "content-generation", "--reason", "provider down")
    assert code == 0 and out == "paused content-generation: 0 queued jobs held back\n"
    code, out, _ = run("types")
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert rows["content-generation"].split()[1:3] == ["paused", "1"]  # the queued job
    assert "provider down" in rows["content-generation"] and me() in rows["content-generation"]
    assert rows["website-analysis"].split()[1:3] == ["running", "0"]
    code, out, _ = run("--json", "resume", "content-generation")
    assert code == 0 and json.loads(out) == {"type": "content-generation", "changed": True,
                                             "released": 1}
    assert db.execute("SELECT dispatch_id IS NOT NULL FROM jobs WHERE id = %s",
                      (queued,)).fetchone() == (True,)
    assert run("resume", "content-generation")[1] == "content-generation was not paused\n"
    code, _, err = run("pause", "video-editing")
    assert code == 1 and "No such job type" in err
    assert db.execute("SELECT actor, action, job_count FROM ops_audit ORDER BY id").fetchall() == [
        (me(), "pause", 0), (me(), "resume", 1), (me(), "resume", 0)]


@pytest.mark.parametrize("argv", [
    [], ["pause"], ["resume"], ["list", "--status", "stuck"], ["list", "--owner", "user:1"],
    ["show", "nope"],
    ["retry"], ["retry", "0197a3f2-0000-7000-8000-000000000000", "--status", "failed"],
    ["cancel", "--status", "queued", "--yes"], ["prune"], ["frobnicate"],
    ["list", "--id-prefix", "xyz"],
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(*argv)[0] == 2
    assert capsys.readouterr().err  # argparse's message


def test_the_installed_script(db_url: str, db: psycopg.Connection[Any]) -> None:
    failed = insert_job(db, status="failed", error_code="TIMEOUT")
    script = Path(sys.executable).parent / "jobs-admin"
    environment = {**os.environ, "DATABASE_URL": db_url}
    listed = subprocess.run([str(script), "--json", "list", "--error-code", "TIMEOUT"],
                            env=environment, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert [job["jobId"] for job in json.loads(listed.stdout)["jobs"]] == [str(failed)]
    missing = subprocess.run([str(script), "show", str(uuid.uuid4())], env=environment,
                             capture_output=True, text=True, timeout=60)
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr.startswith("jobs-admin: Job not found")


def test_output_cut_short_by_its_reader_is_no_error(db_url: str,
                                                   db: psycopg.Connection[Any]) -> None:
    # `true` reads nothing and is gone before jobs-admin writes its first line (it connects
    # to PostgreSQL first): every write meets a closed pipe, as `| head` does past its lines.
    failed = insert_job(db, status="failed", error_code="TIMEOUT")
    script = Path(sys.executable).parent / "jobs-admin"
    shown = subprocess.run(["bash", "-c", f"set -o pipefail; '{script}' show {failed} | true"],
                           env={**os.environ, "DATABASE_URL": db_url}, capture_output=True,
                           text=True, timeout=60)
    assert (shown.returncode, shown.stderr) == (0, "")
