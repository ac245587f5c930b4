"""The ops page in headless Chromium (see test_browser.py): the token from the URL fragment,
the summary line first and the panels in their declared order, the tables (columns named
and values in their units) and SVG charts of the seeded jobs (a log scale for durations,
throughput lines drawn each its own way), a refresh that picks up a new job, the token kept
for a reload, and the message for a refused token. The screenshot is kept in
var/artifacts/ops-page.png."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from queue_jobs.observability.dashboards import Dashboard, dashboards
from tests.integration.conftest import ARTIFACTS, browser_page
from tests.integration.support import live_server
from tests.integration.test_ops_page import ON_CALL_ORDER, OPS_TOKEN, app_for, seed_jobs
from webapp.views import ops

TIMEOUT_MS = 10_000


@pytest.fixture
def live_url(db_url: str) -> Iterator[str]:
    with live_server(app_for(db_url, OPS_TOKEN)) as url:
        yield url


@pytest.fixture
def page(browser: Browser, live_url: str) -> Iterator[Page]:
    with browser_page(browser, live_url) as opened:
        yield opened


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
    # The summary is the line above the panels, not a panel of its own.
    expect(page.get_by_test_id("dashboard")).to_have_count(len(dashboards()) - 1)
    queue = board(page, "queue_depth")
    expect(queue.locator("tbody tr")).to_have_count(1)
    queued = queue.locator("tbody tr").first.locator("td").nth(
        queue.locator("thead th").all_inner_texts().index("Queued"))
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
    summary = page.get_by_test_id("summary")
    expect(summary.locator("[data-name=queued] [data-testid=summary-value]")).to_have_text("3")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ops-page.png"), full_page=True)

    # The token stays with the tab: a reload without the fragment still shows the data.
    page.reload()
    expect(app).to_have_attribute("data-state", "ok", timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("token-form")).to_be_hidden()


def test_the_summary_line_comes_first_then_the_panels_in_on_call_order(
        page: Page, db: psycopg.Connection[Any]) -> None:
    seed_jobs(db)
    db.execute("INSERT INTO procrastinate_workers (last_heartbeat) "
               "VALUES (now() - interval '4 seconds')")
    page.goto(f"/ops#token={OPS_TOKEN}")
    expect(page.get_by_test_id("ops")).to_have_attribute("data-state", "ok",
                                                         timeout=TIMEOUT_MS)
    summary = page.get_by_test_id("summary")
    expect(summary).to_be_visible()
    items = summary.get_by_test_id("summary-item")
    expect(items).to_have_count(5)
    assert [(name, value) for name, value in zip(
        items.evaluate_all("items => items.map(i => i.dataset.name)"),
        summary.get_by_test_id("summary-value").all_inner_texts(), strict=True)
        if name != "oldest_queued_s"] == [
        ("queued", "2"), ("running", "1"), ("failed_last_hour", "1"), ("live_workers", "1")]
    expect(items.locator("dt")).to_have_text(["Queued", "Running", "Oldest queued",
                                              "Failed, last hour", "Live workers"])
    expect(items.nth(2).get_by_test_id("summary-value")).to_have_text(
        re.compile(r"^\d+ (s|min)( \d+ s)?$"))  # the oldest queued job's age, in words
    # Above everything else, then the panels in the declared order.
    above = page.evaluate("""() => {
        const summary = document.querySelector("[data-testid=summary]");
        return [...document.querySelectorAll("[data-testid=dashboard]")].every(
            (board) => summary.compareDocumentPosition(board) & Node.DOCUMENT_POSITION_FOLLOWING);
    }""")
    assert above
    expect(page.get_by_test_id("dashboard")).to_have_count(len(ON_CALL_ORDER) - 1)
    assert page.get_by_test_id("dashboard").evaluate_all(
        "boards => boards.map(b => b.dataset.name)") == ON_CALL_ORDER[1:]

    # Column names and units as the queries declare them.
    failures = board(page, "failure_rate")
    headers = failures.locator("thead th").all_inner_texts()
    assert "Share of finished" in headers and "share_of_finished" not in headers
    expect(failures.locator("tbody td").nth(headers.index("Share of finished"))).to_have_text(
        "100.0 %")  # the only finished analysis failed
    workers = board(page, "live_workers")
    heartbeat = workers.locator("thead th").all_inner_texts().index("Last heartbeat")
    expect(workers.locator("tbody td").nth(heartbeat)).to_have_text(re.compile(r"^\d+ s ago$"))


def test_durations_on_a_log_scale_and_lines_told_apart(page: Page,
                                                       db: psycopg.Connection[Any]) -> None:
    """An 8 s step beside 100-300 ms ones leaves those visible; the three throughput lines
    coincide (as many created as started as finished) yet are drawn each its own way."""
    seed_jobs(db)
    db.execute("INSERT INTO job_steps (job_id, job_type, step, attempt, outcome, duration_ms) "
               "SELECT id, 'content-generation', 'visuals', 1, 'succeeded', 8000 "
               "FROM jobs WHERE type = 'content-generation' LIMIT 1")
    page.goto(f"/ops#token={OPS_TOKEN}")
    expect(page.get_by_test_id("ops")).to_have_attribute("data-state", "ok",
                                                         timeout=TIMEOUT_MS)
    steps = board(page, "step_durations")
    expect(steps.get_by_test_id("chart")).to_have_attribute("data-scale", "log")
    expect(steps.get_by_test_id("chart-tick")).not_to_have_count(0)
    widths = {(bar["label"], bar["series"]): bar["width"]
              for bar in steps.get_by_test_id("chart-bar").evaluate_all(
                  "bars => bars.map(b => ({label: b.querySelector('title').textContent"
                  ".split(',')[0], series: b.dataset.series, width: +b.getAttribute('width')}))")}
    outlier = widths[("content-generation · visuals", "p50_ms")]
    median = widths[("content-generation · content", "p50_ms")]  # 200 ms
    assert median / outlier > 0.1, widths  # linear: 200 / 8000 = 0.025
    expect(steps.locator("thead th")).to_contain_text(["Median", "95th percentile"])
    expect(steps.get_by_test_id("chart")).to_contain_text("8 s")

    lines = board(page, "throughput").get_by_test_id("chart-line")
    expect(lines).to_have_count(3)
    drawn = lines.evaluate_all("""lines => lines.map(line => {
        const style = getComputedStyle(line);
        return [style.stroke, style.strokeDasharray, style.strokeWidth].join(" | ");
    })""")
    # Not by colour alone: by dash pattern and width too, so they part where they coincide.
    assert len({line.split(" | ", 1)[1] for line in drawn}) == 3, drawn
    legend = board(page, "throughput").get_by_test_id("legend-item")
    expect(legend).to_have_text(["Created", "Started", "Finished"])
    keys = legend.locator("line").evaluate_all("""keys => keys.map(key => {
        const style = getComputedStyle(key);
        return [style.stroke, style.strokeDasharray, style.strokeWidth].join(" | ");
    })""")
    assert keys == drawn  # the legend shows each line as it is drawn
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    board(page, "step_durations").screenshot(path=str(ARTIFACTS / "ops-step-durations.png"))
    board(page, "throughput").screenshot(path=str(ARTIFACTS / "ops-throughput.png"))


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
    expect(page.get_by_test_id("dashboard")).to_have_count(len(dashboards()) - 1)


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
    expect(page.get_by_test_id("dashboard")).to_have_count(len(dashboards()))  # + 1 - summary
    expect(board(page, "queue_depth").get_by_test_id("dashboard-table")).to_be_visible()
