"""The ops page in headless Chromium (see test_browser.py): the token from the URL fragment,
the tables and SVG charts of the seeded jobs, a refresh that picks up a new job, the token
kept for a reload, and the message for a refused token. The screenshot is kept in
var/artifacts/ops-page.png."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from queue_jobs.observability.dashboards import Dashboard, dashboards
from tests.integration.conftest import ARTIFACTS
from tests.integration.support import live_server
from tests.integration.test_ops_page import OPS_TOKEN, app_for, seed_jobs
from webapp.views import ops

TIMEOUT_MS = 10_000


@pytest.fixture
def live_url(db_url: str) -> Iterator[str]:
    with live_server(app_for(db_url, OPS_TOKEN)) as url:
        yield url


@pytest.fixture
def page(browser: Browser, live_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=live_url)
    opened = context.new_page()
    yield opened
    context.close()


def board(page: Page, name: str) -> Any:
    return page.locator(f"[data-testid=dashboard][data-name={name}]")


def test_the_page_draws_every_dashboard_and_refreshes(page: Page,
                                                      db: psycopg.Connection[Any]) -> None:
    seed_jobs(db)
    data_requests: list[Request] = []

    def record(request: Request) -> None:
        if request.url.endswith("/ops/data"):
            data_requests.append(request)

    page.on("request", record)
    page.goto(f"/ops?refresh=1#token={OPS_TOKEN}")
    app = page.get_by_test_id("ops")
    expect(app).to_have_attribute("data-state", "ok", timeout=TIMEOUT_MS)
    assert "token" not in page.url  # the fragment left the address bar
    expect(page.get_by_test_id("refresh-note")).to_have_text("Refreshes every 1 s.")
    expect(page.get_by_test_id("dashboard")).to_have_count(len(dashboards()))
    queue = board(page, "queue_depth")
    expect(queue.locator("tbody tr")).to_have_count(1)
    queued = queue.locator("tbody tr").first.locator("td").nth(
        queue.locator("thead th").all_inner_texts().index("queued"))
    expect(queued).to_have_text("2")
    # The charts, drawn as SVG from the seeded rows.
    expect(board(page, "throughput").get_by_test_id("chart-line")).to_have_count(
        len(next(d for d in dashboards() if d.name == "throughput").series))
    expect(board(page, "failure_rate").get_by_test_id("chart-bar")).not_to_have_count(0)
    expect(board(page, "step_durations").get_by_test_id("chart-bar")).not_to_have_count(0)
    expect(page.locator("[data-testid=dashboard-error]:visible")).to_have_count(0)

    # A refresh picks up a new queued job, and says when.
    updated = page.get_by_test_id("updated-at").inner_text()
    assert updated.startswith("Updated at")
    db.execute("INSERT INTO jobs (id, type, owner_session_id, input) VALUES "
               "(%s, 'website-analysis', 'sess_ops_page', '{}')", (uuid.uuid4(),))
    expect(queued).to_have_text("3", timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("updated-at")).not_to_have_text(updated)
    assert len(data_requests) >= 2
    assert {r.headers.get("authorization") for r in data_requests} == {f"Bearer {OPS_TOKEN}"}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ops-page.png"), full_page=True)

    # The token stays with the tab: a reload without the fragment still shows the data.
    page.reload()
    expect(app).to_have_attribute("data-state", "ok", timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("token-form")).to_be_hidden()


def test_a_refused_token_says_so_and_the_form_takes_another(page: Page) -> None:
    page.goto("/ops#token=not-the-token")
    app = page.get_by_test_id("ops")
    expect(app).to_have_attribute("data-state", "unauthorized", timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("error-box")).to_contain_text("401")
    expect(page.get_by_test_id("dashboard")).to_have_count(0)
    expect(page.get_by_test_id("token-form")).to_be_visible()
    page.get_by_test_id("token-input").fill(OPS_TOKEN)
    page.get_by_test_id("token-submit").click()
    expect(app).to_have_attribute("data-state", "ok", timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("error-box")).to_be_hidden()
    expect(page.get_by_test_id("dashboard")).to_have_count(len(dashboards()))


def test_without_a_token_the_page_asks_for_one(page: Page) -> None:
    page.goto("/ops")
    expect(page.get_by_test_id("ops")).to_have_attribute("data-state", "asking")
    expect(page.get_by_test_id("token-form")).to_be_visible()
    expect(page.get_by_test_id("token-input")).to_be_focused()


def test_a_failing_query_is_shown_with_the_others(page: Page,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    broken = Dashboard("broken", "Broken on purpose", "bars", ("n",), "Divides by zero.",
                       "SELECT 'x' AS label, 1/0 AS n")
    monkeypatch.setattr(ops, "dashboards", lambda: (broken, *dashboards()))
    page.goto(f"/ops#token={OPS_TOKEN}")
    expect(page.get_by_test_id("ops")).to_have_attribute("data-state", "ok",
                                                         timeout=TIMEOUT_MS)
    failed = board(page, "broken")
    expect(failed.get_by_test_id("dashboard-error")).to_contain_text("division by zero")
    expect(failed.get_by_test_id("dashboard-table")).to_be_hidden()
    expect(page.get_by_test_id("dashboard")).to_have_count(len(dashboards()) + 1)
    expect(board(page, "queue_depth").get_by_test_id("dashboard-table")).to_be_visible()
