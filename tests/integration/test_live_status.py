"""Live status over real HTTP: the event stream of a job under gunicorn's gevent worker as
shipped, driven by PostgreSQL NOTIFY, and status polls answered from memory."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests
import werkzeug.test
from psycopg import sql
from psycopg.conninfo import make_conninfo

from queue_jobs.services import jobs
from tests.fakes.website import FakeWebsite
from tests.integration.conftest import start_gunicorn
from tests.integration.support import (
    ApiClient,
    SseReader,
    ThreadWorker,
    new_session,
    wait_until,
    wait_until_serving,
)
from webapp.polls_from_memory import PollsFromMemory

LISTENER = "jobs-web-live"  # the listening connection's application_name


@pytest.fixture
def web(db_url: str) -> Iterator[str]:
    """The app under gunicorn as shipped (gevent), one process, keep-alives every second."""
    process, base = start_gunicorn(db_url, processes=1, LIVE_KEEPALIVE_S="1")
    try:
        wait_until_serving(base)
        yield base
    finally:
        process.terminate()
        process.wait(20)


def _create(base: str, url: str, headers: dict[str, str]) -> str:
    response = requests.post(f"{base}/api/v1/jobs/website-analysis", json={"url": url},
                             headers=headers, timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["jobId"])


def _status(base: str, job_id: str, headers: dict[str, str]) -> requests.Response:
    return requests.get(f"{base}/api/v1/jobs/{job_id}/status", headers=headers, timeout=10)


def _order(event_id: str) -> tuple[int, int]:
    version, ms, _digest = event_id.split("-")
    return int(version), int(ms)


@pytest.mark.slow
def test_a_stream_follows_a_job_to_its_end(web: str, settings: Any,
                                           website: FakeWebsite) -> None:
    session = new_session()
    job_id = _create(web, website.url("/"), session)
    stream = SseReader(web, job_id, session)
    assert stream.response.status_code == 200
    assert stream.response.headers["Content-Type"].startswith("text/event-stream")
    assert stream.response.headers["Cache-Control"] == "no-cache"
    assert stream.response.headers["X-Accel-Buffering"] == "no"
    first = stream.next_event()
    assert first is not None and first.event == "status"
    assert first.document["status"] == "queued" and first.document["jobId"] == job_id

    events = [first]
    with ThreadWorker(settings):
        while (event := stream.next_event()) is not None:
            events.append(event)
    documents = [event.document for event in events]
    assert documents[-1]["status"] == "succeeded", documents[-1]
    statuses = [document["status"] for document in documents]
    assert "running" in statuses
    assert all(status != "succeeded" for status in statuses[:-1])
    # one event per change: never the same document twice in a row, ids increasing
    assert all(a.data != b.data for a, b in itertools.pairwise(events))
    orders = [_order(event.event_id or "") for event in events]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    progress = [document["progress"] for document in documents]
    assert progress == sorted(progress)
    # the last event is exactly what /status answers now
    assert json.loads(_status(web, job_id, session).content) == documents[-1]


def test_a_finished_job_streams_one_event_then_closes(web: str) -> None:
    session = new_session()
    job_id = _create(web, "https://example.com/", session)
    assert requests.post(f"{web}/api/v1/jobs/{job_id}/cancel", headers=session,
                         timeout=10).status_code == 200
    stream = SseReader(web, job_id, session)
    event = stream.next_event()
    assert event is not None and event.document["status"] == "failed"
    assert event.document["errorCode"] == "CANCELLED"
    assert stream.next() is None  # closed by the server


def test_stream_errors_before_it_starts_are_the_json_envelope(web: str) -> None:
    session = new_session()
    job_id = _create(web, "https://example.com/", session)
    cases = [
        (f"/api/v1/jobs/{job_id}/events", new_session(), 404, "JOB_NOT_FOUND"),
        ("/api/v1/jobs/not-a-job/events", session, 404, "JOB_NOT_FOUND"),
        (f"/api/v1/jobs/{job_id}/events", {}, 401, "AUTH_REQUIRED"),
        (f"/api/v1/jobs/{job_id}/events", {"Authorization": "Bearer x"}, 401, "TOKEN_INVALID"),
    ]
    for path, headers, status, code in cases:
        response = requests.get(f"{web}{path}", headers=headers, timeout=10)
        assert response.status_code == status, (path, headers, response.text)
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["errorCode"] == code


def test_last_event_id_waits_for_a_change_unless_there_was_one(web: str) -> None:
    session = new_session()
    job_id = _create(web, "https://example.com/", session)
    first = SseReader(web, job_id, session)
    seen = first.next_event()
    first.close()
    assert seen is not None and seen.event_id

    resumed = SseReader(web, job_id, session, last_event_id=seen.event_id)
    # unchanged since that id: keep-alives (every second here), no event
    for _ in range(2):
        message = resumed.next()
        assert message is not None and message.comment == "keep-alive", message
    requests.post(f"{web}/api/v1/jobs/{job_id}/cancel", headers=session, timeout=10)
    changed = resumed.next_event()
    assert changed is not None and changed.document["status"] == "failed"
    assert _order(changed.event_id or "") > _order(seen.event_id)

    stale = SseReader(web, job_id, session, last_event_id=seen.event_id)
    at_once = stale.next()
    assert at_once is not None and at_once.event == "status"  # it changed since: at once


def _block_connections(db: psycopg.Connection[Any], blocked: bool) -> None:
    """New connections to the test's database refused (or allowed again); said from
    another database, as PostgreSQL requires."""
    other = make_conninfo(db.info.dsn, password=db.info.password, dbname="postgres")
    with psycopg.connect(other, autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
            sql.Identifier(db.info.dbname), sql.SQL("false" if blocked else "true")))


def _cut_listener(db: psycopg.Connection[Any]) -> None:
    """New connections refused, then the listening connection ended: a gap that lasts
    until _block_connections(db, False)."""
    _block_connections(db, True)
    db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
               "WHERE application_name = %s AND datname = current_database()", (LISTENER,))

    def gone() -> bool:
        return db.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                          "AND datname = current_database()", (LISTENER,)).fetchone() == (0,)

    wait_until(gone, message="the listening connection to end")


def _touch(db: psycopg.Connection[Any], job_id: str, progress: int) -> None:
    """A change of the job's document that the application did not make (an operator's SQL)."""
    db.execute("UPDATE jobs SET progress = %s, updated_at = now() WHERE id = %s",
               (progress, job_id))


def test_a_change_made_while_the_listener_is_cut_reaches_the_stream(
        web: str, db: psycopg.Connection[Any]) -> None:
    session = new_session()
    job_id = _create(web, "https://example.com/", session)
    stream = SseReader(web, job_id, session)
    assert stream.next_event() is not None
    _cut_listener(db)
    try:
        _touch(db, job_id, 7)  # its NOTIFY reaches nobody
        message = stream.next()
        assert message is not None and message.comment is not None  # nothing yet
    finally:
        _block_connections(db, False)
    event = stream.next_event()  # after the listener is back: the document, read again
    assert event is not None and event.document["progress"] == 7


# --- status polls answered from memory (in-process app: its feed can be looked at) -------

def _feed_listening(api: ApiClient, job_id: str, headers: dict[str, str]) -> Any:
    feed = api.app.extensions["live_feed"]
    api.status(job_id, headers)  # the first use starts it
    wait_until(lambda: feed.connected, message="the live feed to listen")
    return feed


def _poll(api: ApiClient, job_id: str, headers: dict[str, str],
          etag: str | None = None) -> Any:
    extra = {"If-None-Match": etag} if etag else {}
    return api.http.get(f"/api/v1/jobs/{job_id}/status", headers={**headers, **extra})


def test_an_unchanged_job_is_answered_from_memory_until_it_changes(
        api: ApiClient, db: psycopg.Connection[Any]) -> None:
    session = new_session()
    job_id = api.create_analysis("https://example.com/", session)
    feed = _feed_listening(api, job_id, session)
    first = _poll(api, job_id, session)
    etag = first.headers["ETag"].strip('"')
    before = feed.answered_from_memory
    again = _poll(api, job_id, session, first.headers["ETag"])
    assert again.status_code == 304
    assert feed.answered_from_memory == before + 1

    _touch(db, job_id, 9)
    changed = wait_until(lambda: (lambda r: r if r.status_code == 200 else None)(
        _poll(api, job_id, session, first.headers["ETag"])), message="the change to be seen")
    assert changed.get_json()["progress"] == 9 and changed.headers["ETag"].strip('"') != etag
    # another owner never gets an answer from memory
    assert _poll(api, job_id, new_session(), changed.headers["ETag"]).status_code == 404


def _without_fast_path(api: ApiClient) -> Any:
    """A client of the Flask app behind PollsFromMemory: every poll goes through the view."""
    inner = api.app.wsgi_app
    assert isinstance(inner, PollsFromMemory)
    return werkzeug.test.Client(inner.app)


def _count_requests_reaching_flask(api: ApiClient) -> list[str]:
    """The paths of the requests PollsFromMemory hands to Flask from now on."""
    fast_path = api.app.wsgi_app
    assert isinstance(fast_path, PollsFromMemory)
    flask_app, reached = fast_path.app, []

    def counted(environ: dict[str, Any], start_response: Any) -> Any:
        reached.append(environ["PATH_INFO"])
        return flask_app(environ, start_response)

    fast_path.app = counted
    return reached


def _same_answer(fast: Any, view: Any) -> None:
    """The same answer but for the request's own id (and the date)."""
    assert fast.status_code == view.status_code
    assert fast.get_data() == view.get_data()
    skip = {"X-Request-Id", "Date"}
    assert (sorted((k, v) for k, v in fast.headers.items() if k not in skip)
            == sorted((k, v) for k, v in view.headers.items() if k not in skip))


def test_a_poll_from_memory_is_answered_before_flask_as_the_view_answers_it(
        api: ApiClient, db: psycopg.Connection[Any]) -> None:
    session = new_session()
    job_id = api.create_analysis("https://example.com/", session)
    feed = _feed_listening(api, job_id, session)
    view = _without_fast_path(api)
    path = f"/api/v1/jobs/{job_id}/status"
    first = _poll(api, job_id, session)
    reached_flask = _count_requests_reaching_flask(api)
    browser = {**session, "Origin": "https://app.example", "X-Request-Id": "req-1.a_b"}
    for extra in ({}, {"If-None-Match": first.headers["ETag"]},
                  {"If-None-Match": '"stale", ' + first.headers["ETag"]}, {"If-None-Match": "*"}):
        before = feed.answered_from_memory
        fast = api.http.get(path, headers={**browser, **extra})
        assert feed.answered_from_memory == before + 1  # answered from memory, not read
        _same_answer(fast, view.get(path, headers={**browser, **extra}))
        assert fast.headers["X-Request-Id"] == "req-1.a_b" and not reached_flask
    # what memory cannot answer exactly as the view would, the view answers
    etag = {"If-None-Match": first.headers["ETag"]}
    assert api.http.get(path, headers={**new_session(), **etag}).status_code == 404
    assert api.http.get(path, headers={"x-session-id": "bad id", **etag}).status_code == 401
    assert api.http.get(path + "/", headers={**session, **etag}).status_code == 404
    assert reached_flask == [path, path, path + "/"]
    # a finished (cancelled) job's 304 alike
    api.http.post(f"/api/v1/jobs/{job_id}/cancel", headers=session)
    done = wait_until(lambda: (lambda r: r if r.get_json()["status"] == "failed" else None)(
        _poll(api, job_id, session)), message="the cancel to be seen")
    # read once, then remembered as finished once the cancel's notification is in
    def finished_from_memory() -> bool:
        before = feed.answered_from_memory
        answer = _poll(api, job_id, session, done.headers["ETag"])
        return answer.status_code == 304 and feed.answered_from_memory == before + 1

    wait_until(finished_from_memory, message="the finished job to be answered from memory")
    before = feed.answered_from_memory
    reached_flask.clear()
    fast = api.http.get(path, headers={**browser, "If-None-Match": done.headers["ETag"]})
    assert fast.status_code == 304 and feed.answered_from_memory == before + 1
    assert not reached_flask
    _same_answer(fast, view.get(path, headers={**browser, "If-None-Match": done.headers["ETag"]}))


def test_a_fault_in_the_fast_path_hands_the_poll_to_the_view(
        api: ApiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    session = new_session()
    job_id = api.create_analysis("https://example.com/", session)
    feed = _feed_listening(api, job_id, session)
    first = _poll(api, job_id, session)
    reached_flask = _count_requests_reaching_flask(api)
    remembered = feed.status_from_memory
    calls: list[int] = []

    def fails_once(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a fault in the fast path")
        return remembered(*args)

    monkeypatch.setattr(feed, "status_from_memory", fails_once)
    again = _poll(api, job_id, session, first.headers["ETag"])
    assert again.status_code == 304 and len(calls) == 2 and len(reached_flask) == 1


def test_a_listener_gap_drops_what_memory_knew(api: ApiClient,
                                               db: psycopg.Connection[Any]) -> None:
    session = new_session()
    job_id = api.create_analysis("https://example.com/", session)
    feed = _feed_listening(api, job_id, session)
    first = _poll(api, job_id, session)
    assert _poll(api, job_id, session, first.headers["ETag"]).status_code == 304
    _cut_listener(db)
    try:
        wait_until(lambda: not feed.connected, message="the feed to notice the gap")
        _touch(db, job_id, 11)
        during = _poll(api, job_id, session, first.headers["ETag"])
        assert during.status_code == 200 and during.get_json()["progress"] == 11
    finally:
        _block_connections(db, False)


def test_a_deleted_account_gets_401_not_a_remembered_answer(
        api: ApiClient, db: psycopg.Connection[Any]) -> None:
    token = api.token_for()
    job_id = api.create_analysis("https://example.com/", token)
    _feed_listening(api, job_id, token)
    first = _poll(api, job_id, token)
    assert _poll(api, job_id, token, first.headers["ETag"]).status_code == 304
    db.execute("DELETE FROM users")
    wait_until(lambda: _poll(api, job_id, token, first.headers["ETag"]).status_code == 401,
               message="the deleted account's poll to be refused")


def test_a_finished_jobs_etag_is_the_same_from_sql_and_from_memory(
        api: ApiClient, db: psycopg.Connection[Any]) -> None:
    session = new_session()
    job_id = api.create_analysis("https://example.com/", session)
    api.http.post(f"/api/v1/jobs/{job_id}/cancel", headers=session)
    version = db.execute("SELECT version FROM jobs WHERE id = %s", (job_id,)).fetchone()
    assert version is not None
    response = _poll(api, job_id, session)
    assert response.headers["ETag"].strip('"') == jobs.finished_etag(uuid.UUID(job_id),
                                                                     version[0])


def test_a_queued_jobs_stream_follows_its_place_in_the_queue(web: str) -> None:
    first_owner, second_owner = new_session(), new_session()
    ahead = _create(web, "https://example.com/", first_owner)
    behind = _create(web, "https://example.com/", second_owner)
    stream = SseReader(web, behind, second_owner)
    opened = stream.next_event()
    assert opened is not None and opened.document["queuePosition"] == 2
    requests.post(f"{web}/api/v1/jobs/{ahead}/cancel", headers=first_owner, timeout=10)
    moved = stream.next_event()  # not the job's own change: the queue moved
    assert moved is not None and moved.document["queuePosition"] == 1
    assert moved.document["estimatedTimeRemaining"] <= opened.document["estimatedTimeRemaining"]
