"""The demo page in a real browser: Playwright driving Debian's Chromium (headless) against
the live app on a real HTTP server, a real worker, the fake LLM and the local site.

`make test` installs Chromium first (`make deps`); browser downloads are not possible
here, so Playwright is pointed at the system binary (CHROMIUM, default /usr/bin/chromium).
The finished page's screenshot is kept as a test artefact in var/artifacts/.

The page follows a job by its event stream (/events) and polls /status only when streams
are refused: the requests the page makes are counted to tell which transport it used.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request, Response, expect

from queue_jobs.config.settings import QueueSettings
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.website import FakeWebsite
from tests.integration.conftest import ARTIFACTS, TEST_JWT_SECRET, browser_page
from tests.integration.support import ThreadWorker, live_server
from webapp import create_app

STEP_TIMEOUT_MS = 20_000


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    """Web settings of the app under test (a test parametrizes this to change them)."""
    return {}


@pytest.fixture
def live_url(db_url: str, settings: QueueSettings,
             app_overrides: dict[str, Any]) -> Iterator[str]:
    with live_server(create_app({"database_url": db_url, "jwt_secret_key": TEST_JWT_SECRET,
                                 "queue_settings": settings, **app_overrides})) as url:
        yield url


@pytest.fixture
def page(browser: Browser, live_url: str, worker: ThreadWorker) -> Iterator[Page]:
    with browser_page(browser, live_url) as opened:
        opened.goto("/")
        expect(opened.get_by_test_id("app")).to_have_attribute("data-ready", "true")
        yield opened


def analyze(page: Page, url: str) -> None:
    page.get_by_test_id("url-input").fill(url)
    page.get_by_test_id("analyze-button").click()


def expect_status(page: Page, status: str) -> None:
    expect(page.get_by_test_id("job")).to_have_attribute("data-status", status,
                                                         timeout=STEP_TIMEOUT_MS)


@dataclass
class JobRequests:
    """The page's requests for a job's stream (/events) and status (/status), from now on:
    the Last-Event-ID each stream was opened with, and each stream's answer status."""

    events: list[str | None]
    events_answers: list[int]
    polls: list[str]

    @classmethod
    def record(cls, page: Page) -> JobRequests:
        recorded = cls([], [], [])

        def on_request(request: Request) -> None:
            if request.url.endswith("/events"):
                recorded.events.append(request.header_value("last-event-id"))
            elif request.url.endswith("/status"):
                recorded.polls.append(request.url)

        def on_response(response: Response) -> None:
            if response.url.endswith("/events"):
                recorded.events_answers.append(response.status)

        page.on("request", on_request)
        page.on("response", on_response)
        return recorded


def expect_transport(page: Page, transport: str) -> None:
    expect(page.get_by_test_id("transport")).to_have_attribute("data-transport", transport,
                                                               timeout=STEP_TIMEOUT_MS)
    expect(page.get_by_test_id("transport")).to_be_visible()


def test_the_happy_path_renders_the_whole_result(page: Page, website: FakeWebsite,
                                                 fake_llm: FakeOpenAI) -> None:
    requests = JobRequests.record(page)
    fake_llm.set_delay("chat:audiences", 3)  # long enough for the page to show the step
    analyze(page, website.url("/"))
    expect(page.get_by_test_id("current-step")).to_have_text("Generating audiences...",
                                                             timeout=STEP_TIMEOUT_MS)
    expect_transport(page, "stream")
    expect(page.get_by_test_id("job")).to_have_attribute("data-status", "running")
    percent = int(page.get_by_test_id("progress-percent").inner_text().rstrip("%"))
    assert 0 < percent < 100
    expect_status(page, "succeeded")
    # Followed to the end by one event stream, never polled.
    assert requests.events == [None] and requests.events_answers == [200]
    assert requests.polls == []
    expect(page.get_by_test_id("transport")).to_be_hidden()  # nothing more to follow
    cards = page.get_by_test_id("scenario-card")
    expect(cards.first).to_be_visible()
    assert 2 <= cards.count() <= 5
    expect(page.get_by_test_id("result-business-name")).not_to_be_empty()
    expect(page.get_by_test_id("cta-link").first).to_be_visible()
    # Every image arrived through fetch() with the session header and was decoded.
    images = page.get_by_test_id("scenario-image")
    expect(images).to_have_count(cards.count(), timeout=STEP_TIMEOUT_MS)
    page.wait_for_function("[...document.querySelectorAll('[data-testid=scenario-image]')]"
                           ".every((img) => img.complete && img.naturalWidth > 0)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo-finished.png"), full_page=True)


def test_a_reload_in_the_middle_resumes_the_job(page: Page, website: FakeWebsite,
                                                fake_llm: FakeOpenAI) -> None:
    fake_llm.set_delay("chat:audiences", 3)
    analyze(page, website.url("/"))
    fake_llm.wait_for_calls("chat:audiences", 1)
    expect(page.get_by_test_id("current-step")).to_have_text("Generating audiences...",
                                                             timeout=STEP_TIMEOUT_MS)
    job_id = page.get_by_test_id("job-id").inner_text()
    requests = JobRequests.record(page)
    page.reload()
    expect(page.get_by_test_id("app")).to_have_attribute("data-ready", "true")
    expect(page.get_by_test_id("job-id")).to_have_text(job_id)
    expect_status(page, "succeeded")
    expect(page.get_by_test_id("scenario-card").first).to_be_visible()
    # The reloaded page resumed the stream after the last event the first one had, and
    # never polled.
    assert requests.events and requests.events[0], requests.events
    assert requests.events_answers == [200] * len(requests.events)
    assert requests.polls == []


@pytest.mark.parametrize("app_overrides", [{"streams_per_process": 0}])
def test_refused_streams_fall_back_to_polling(page: Page, website: FakeWebsite,
                                              fake_llm: FakeOpenAI) -> None:
    requests = JobRequests.record(page)
    fake_llm.set_delay("chat:audiences", 3)
    analyze(page, website.url("/"))
    expect_transport(page, "polling")
    expect(page.get_by_test_id("current-step")).to_have_text("Generating audiences...",
                                                             timeout=STEP_TIMEOUT_MS)
    expect_status(page, "succeeded")
    expect(page.get_by_test_id("scenario-card").first).to_be_visible()
    assert requests.events_answers and set(requests.events_answers) == {503}
    assert len(requests.polls) >= 2
    expect(page.get_by_test_id("connection-notice")).to_be_hidden()  # a refusal is no problem


def test_cancel_stops_a_running_job(page: Page, website: FakeWebsite,
                                    fake_llm: FakeOpenAI) -> None:
    fake_llm.set_delay("chat:business_analysis", 30)
    analyze(page, website.url("/"))
    fake_llm.wait_for_calls("chat:business_analysis", 1)
    page.get_by_test_id("cancel-button").click()
    # The contract's 5 s, plus one poll of the page (every 2.5 s).
    expect(page.get_by_test_id("job")).to_have_attribute("data-status", "failed",
                                                         timeout=7_500)
    expect(page.get_by_test_id("error-code")).to_contain_text("CANCELLED")
    expect(page.get_by_test_id("retry-button")).to_be_visible()


def test_retry_after_an_injected_failure_finishes_the_job(page: Page, website: FakeWebsite,
                                                          fake_llm: FakeOpenAI) -> None:
    fake_llm.fail_next("images", 500, times=3)  # the first try and both in-step retries
    analyze(page, website.url("/"))
    expect_status(page, "failed")
    expect(page.get_by_test_id("error-code")).to_contain_text("LLM_ERROR")
    page.get_by_test_id("retry-button").click()
    expect_status(page, "succeeded")
    expect(page.get_by_test_id("scenario-card").first).to_be_visible()
