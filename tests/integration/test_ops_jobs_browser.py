"""The jobs pages of /ops in headless Chromium (see test_ops_browser.py): the jobs list, a
filter kept in the fragment across a reload, the page of a job a real worker ran (fake
OpenAI server, local website), a retry of a failed job from its page, a bulk cancel
confirmed by its count, the audit trail, a pause then a resume of a job type, and the
API's refusals shown in the page. Screenshots of the list, a job's page and the audit
view go to var/artifacts/."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from queue_jobs.config.settings import QueueSettings
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.website import FakeWebsite
from tests.integration.conftest import ARTIFACTS, TEST_JWT_SECRET, browser_page
from tests.integration.support import ApiClient, ThreadWorker, live_server, new_session
from tests.integration.test_ops_api import insert_job
from webapp import create_app

OPS_TOKEN = "ops-jobs-browser-token-0123456789abcdef"
TIMEOUT_MS = 10_000
RUN_TIMEOUT_MS = 30_000  # a job through the real worker and the fake LLM


@pytest.fixture
def live_url(db_url: str, settings: QueueSettings) -> Iterator[str]:
    with live_server(create_app({"database_url": db_url, "jwt_secret_key": TEST_JWT_SECRET,
                                 "queue_settings": settings, "ops_token": OPS_TOKEN})) as url:
        yield url


@pytest.fixture
def page(browser: Browser, live_url: str) -> Iterator[Page]:
    with browser_page(browser, live_url) as opened:
        yield opened


def open_view(page: Page, fragment: str) -> None:
    page.goto(f"/ops?refresh=1#{fragment}&token={OPS_TOKEN}")
    expect(page.get_by_test_id("ops")).to_have_attribute("data-state", "ok",
                                                         timeout=TIMEOUT_MS)


def sign_in_as(page: Page, name: str) -> None:
    page.get_by_test_id("actor-input").fill(name)
    page.get_by_test_id("actor-submit").click()
    expect(page.get_by_test_id("actor-shown")).to_have_text(f"Acting as {name}")


def rows(page: Page) -> Any:
    return page.get_by_test_id("job-row")


def short(job_id: object) -> str:
    """As the list shows an id: its first and last digits."""
    return f"{str(job_id)[:8]}\u2026{str(job_id)[-6:]}"


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_the_list_a_filter_and_the_page_of_a_job_that_ran(
        page: Page, api: ApiClient, worker: ThreadWorker, website: FakeWebsite,
        db: psycopg.Connection[Any]) -> None:
    session = new_session()
    ran = api.create_analysis(website.url("/"), session)
    api.wait_for_status(ran, session, {"succeeded"}, timeout=30)
    failed = [insert_job(db, status="failed", error_code=code)
              for code in ("FETCH_FAILED", "LLM_ERROR")]
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))

    open_view(page, "view=jobs")
    assert "token" not in page.url and "view=jobs" in page.url
    expect(page.get_by_test_id("nav-jobs")).to_have_attribute("aria-current", "page")
    expect(rows(page)).to_have_count(3)
    # Newest first: the two inserted after the run, then the run.
    assert rows(page).evaluate_all("rs => rs.map(r => r.dataset.jobId)") == [
        str(failed[1]), str(failed[0]), ran]
    expect(page.get_by_test_id("count-failed").locator("dd")).to_have_text("2")
    expect(page.get_by_test_id("count-succeeded").locator("dd")).to_have_text("1")
    expect(page.get_by_test_id("count-total").locator("dd")).to_have_text("3")
    first = rows(page).first
    link = first.get_by_test_id("job-link")
    expect(link).to_have_text(short(failed[1]))  # short, the whole id on hover
    expect(link).to_have_attribute("title", str(failed[1]))
    expect(first.locator("td").nth(5)).to_have_text("LLM_ERROR")
    expect(first.locator("td").nth(7)).to_have_text(re.compile(r"(just now|\d+ s ago)"))
    shot(page, "ops-jobs-list.png")

    # A filter: the first page of its jobs, kept in the fragment across a reload.
    page.get_by_test_id("filter-errorCode").fill("FETCH_FAILED")
    page.get_by_test_id("filter-apply").click()
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_have_attribute("data-job-id", str(failed[0]))
    assert "errorCode=FETCH_FAILED" in page.url
    expect(page.get_by_test_id("count-total").locator("dd")).to_have_text("1")
    page.reload()
    expect(page.get_by_test_id("ops")).to_have_attribute("data-state", "ok",
                                                         timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("filter-errorCode")).to_have_value("FETCH_FAILED")
    expect(rows(page)).to_have_count(1)

    # A bad value: the API's refusal is shown, not swallowed.
    page.get_by_test_id("filter-errorCode").fill("not a code")
    page.get_by_test_id("filter-apply").click()
    expect(page.get_by_test_id("error-box")).to_contain_text("400 VALIDATION_ERROR")
    expect(page.get_by_test_id("error-box")).to_contain_text("errorCode")

    # The job that ran: its page, from a click on its row.
    page.get_by_test_id("filter-clear").click()
    expect(rows(page)).to_have_count(3)
    rows(page).nth(2).locator("td").nth(2).click()
    view = page.get_by_test_id("job-view")
    expect(view).to_be_visible()
    assert f"view=job&id={ran}" in page.url
    expect(view).to_have_attribute("data-status", "succeeded")
    expect(page.get_by_test_id("job-title")).to_contain_text(ran)
    steps = view.get_by_test_id("job-steps").get_by_test_id("record-row")
    expect(steps).to_have_count(4)
    expect(steps.locator("td:first-child")).to_have_text(
        ["analyze", "audiences", "pitches", "images"])
    expect(view.get_by_test_id("timeline-bar")).to_have_count(4)
    expect(page.get_by_test_id("fact-owner")).to_contain_text(session["x-session-id"])
    expect(page.get_by_test_id("fact-llm-calls").locator("dd")).not_to_have_text("0")
    expect(page.get_by_test_id("job-input")).to_contain_text(website.url("/"))
    expect(page.get_by_test_id("job-document")).to_contain_text('"status": "succeeded"')
    expect(view.get_by_test_id("job-image")).not_to_have_count(0)
    expect(view.get_by_test_id("job-image").first).to_contain_text("/api/v1/images/")
    expect(page.get_by_test_id("job-retry")).to_be_disabled()
    expect(page.get_by_test_id("job-cancel")).to_be_disabled()
    expect(page.get_by_test_id("refresh-note")).to_have_text(
        "The job has finished: not refreshing.")
    shot(page, "ops-job-page.png")

    # The token went in the Authorization header only, never in a URL.
    assert all(OPS_TOKEN not in request.url for request in requests)
    assert {request.headers.get("authorization") for request in requests
            if "/ops/api/" in request.url} == {f"Bearer {OPS_TOKEN}"}


def test_a_failed_job_is_retried_from_its_page(page: Page, api: ApiClient,
                                               worker: ThreadWorker, website: FakeWebsite,
                                               fake_llm: FakeOpenAI,
                                               db: psycopg.Connection[Any]) -> None:
    fake_llm.fail_next("images", 500, times=3)  # the first try and both in-step retries
    session = new_session()
    job_id = api.create_analysis(website.url("/"), session)
    api.wait_for_status(job_id, session, {"failed"}, timeout=30)

    open_view(page, f"view=job&id={job_id}")
    view = page.get_by_test_id("job-view")
    expect(view).to_have_attribute("data-status", "failed")
    expect(page.get_by_test_id("fact-error-code")).to_contain_text("LLM_ERROR")
    retry = page.get_by_test_id("job-retry")
    expect(retry).to_be_enabled()
    # No name yet: the page asks for it before it acts.
    retry.click()
    expect(page.get_by_test_id("job-outcome")).to_contain_text("Enter your name")
    sign_in_as(page, "ada")
    retry.click()
    expect(page.get_by_test_id("job-outcome")).to_contain_text("Retried")
    # The page follows the job while it is active, to its end.
    expect(view).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)
    expect(retry).to_be_disabled()
    expect(view.get_by_test_id("job-audit").get_by_test_id("record-row")).to_have_count(1)
    expect(view.get_by_test_id("job-audit")).to_contain_text("retry")
    assert db.execute("SELECT actor, action, job_ids FROM ops_audit").fetchall() == [
        ("ada", "retry", [uuid.UUID(job_id)])]
    # The name is asked once: a reload keeps it.
    page.reload()
    expect(view).to_have_attribute("data-status", "succeeded", timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("actor-shown")).to_have_text("Acting as ada")


def test_a_bulk_cancel_acts_after_its_count_is_confirmed(page: Page, api: ApiClient,
                                                         db: psycopg.Connection[Any]) -> None:
    queued = [api.create_analysis("https://example.com/", new_session()) for _ in range(3)]
    done = insert_job(db, status="succeeded")
    open_view(page, "view=jobs&status=queued")
    sign_in_as(page, "grace")
    expect(rows(page)).to_have_count(3)
    expect(page.get_by_test_id("filter-status")).to_have_value("queued")

    page.get_by_test_id("cancel-matching").click()
    confirm = page.get_by_test_id("confirm-form")
    expect(confirm).to_be_visible()
    expect(page.get_by_test_id("confirm-text")).to_contain_text("3 jobs matching the filter "
                                                                "status=queued")
    # A wrong number does nothing.
    page.get_by_test_id("confirm-input").fill("30")
    page.get_by_test_id("confirm-submit").click()
    expect(page.get_by_test_id("action-outcome")).to_contain_text("Type 3")
    assert db.execute("SELECT count(*) FROM jobs WHERE status = 'queued'").fetchone() == (3,)
    page.get_by_test_id("confirm-input").fill("3")
    page.get_by_test_id("confirm-submit").click()
    expect(page.get_by_test_id("action-outcome")).to_have_text(
        "Cancelled 3 jobs; skipped 0 (changed state meanwhile).")
    expect(rows(page)).to_have_count(0)
    expect(page.get_by_test_id("count-total").locator("dd")).to_have_text("0")
    assert db.execute("SELECT count(*) FROM jobs WHERE id = ANY(%s) AND error_code = "
                      "'CANCELLED'", ([uuid.UUID(j) for j in queued],)).fetchone() == (3,)
    assert db.execute("SELECT status FROM jobs WHERE id = %s", (done,)).fetchone() == (
        "succeeded",)

    # Nothing matches any more: the API's 404 is shown.
    page.get_by_test_id("cancel-matching").click()
    expect(page.get_by_test_id("action-outcome")).to_contain_text("404 NO_MATCHING_JOBS")
    expect(confirm).to_be_hidden()

    # The audit trail: who, what, by which filter, how many.
    page.get_by_test_id("nav-audit").click()
    audit = page.get_by_test_id("audit-view")
    expect(audit).to_be_visible()
    entry = audit.get_by_test_id("record-row")
    expect(entry).to_have_count(1)
    expect(entry.locator("td")).to_have_text([
        re.compile("ago|just now"), "grace", "bulk-cancel", "3",
        re.compile("^the filter status=queued "), re.compile(r"bulkId [0-9a-f-]{36}")])
    which = entry.locator("td").nth(4).locator("a")
    assert sorted(which.all_inner_texts()) == sorted(map(short, queued))
    shot(page, "ops-audit.png")


def test_selected_jobs_are_cancelled_one_by_one(page: Page, api: ApiClient,
                                                db: psycopg.Connection[Any]) -> None:
    queued = [api.create_analysis("https://example.com/", new_session()) for _ in range(2)]
    finished = insert_job(db, status="succeeded")
    open_view(page, "view=jobs")
    sign_in_as(page, "lin")
    expect(rows(page)).to_have_count(3)
    expect(page.get_by_test_id("cancel-selected")).to_be_disabled()
    for job_id in (queued[0], str(finished)):
        page.locator(f"[data-job-id='{job_id}'] [data-testid=row-select]").check()
    expect(page.get_by_test_id("selection-note")).to_have_text("2 selected.")
    page.get_by_test_id("cancel-selected").click()
    expect(page.get_by_test_id("action-outcome")).to_contain_text(
        f"Cancelled 1 job; skipped 1 ({short(finished)}: JOB_NOT_CANCELLABLE).")
    expect(page.locator(f"[data-job-id='{queued[0]}']")).to_have_attribute(
        "data-status", "failed")
    expect(page.locator(f"[data-job-id='{queued[1]}']")).to_have_attribute(
        "data-status", "queued")


def test_a_type_paused_then_resumed_from_the_page(page: Page, api: ApiClient,
                                                  worker: ThreadWorker, website: FakeWebsite,
                                                  db: psycopg.Connection[Any]) -> None:
    open_view(page, "view=jobs")
    sign_in_as(page, "ada")
    analysis = page.locator("[data-testid=type-row][data-type=website-analysis]")
    expect(analysis.get_by_test_id("type-state")).to_have_text("running")
    analysis.get_by_test_id("pause-type").click()
    page.get_by_test_id("pause-reason").fill("the LLM provider is down")
    page.get_by_test_id("pause-submit").click()
    expect(page.get_by_test_id("action-outcome")).to_contain_text("Paused website-analysis")
    expect(analysis.get_by_test_id("type-state")).to_have_text("paused")
    expect(analysis).to_contain_text("the LLM provider is down")

    # A job created while paused is held: queued, counted on its type's row.
    session = new_session()
    held = api.create_analysis(website.url("/"), session)
    expect(analysis.get_by_test_id("type-held")).to_have_text("1", timeout=TIMEOUT_MS)
    row = page.locator(f"[data-job-id='{held}']")
    expect(row).to_have_attribute("data-status", "queued")
    assert "pausedReason" in api.status(held, session)

    analysis.get_by_test_id("resume-type").click()
    expect(page.get_by_test_id("action-outcome")).to_contain_text(
        "Resumed website-analysis: 1 held job released.")
    expect(analysis.get_by_test_id("type-state")).to_have_text("running")
    expect(row).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)
    assert db.execute("SELECT actor, action FROM ops_audit ORDER BY id").fetchall() == [
        ("ada", "pause"), ("ada", "resume")]
