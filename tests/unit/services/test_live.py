"""Live status's pure parts: the notification payload, a stream's offers and its frames."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from queue_jobs.models import JobRow, Owner
from queue_jobs.services import jobs, live

JOB = uuid.UUID("01900000-0000-7000-8000-000000000001")
OWNER = Owner(None, "sess_one")
NOW = datetime(2026, 12, 3, tzinfo=UTC)


def _row(version: int, status: str = "running", **changes: Any) -> JobRow:
    row = JobRow(id=JOB, type="website-analysis", owner_user_id=None,
                 owner_session_id="sess_one", status=status, progress=10, current_step=None,
                 error=None, error_code=None, result=None, step_started_at=None,
                 created_at=NOW, updated_at=NOW, version=version)
    return replace(row, **changes)


def test_notification_payloads_parse_and_bad_ones_are_refused() -> None:
    assert live.parse_change(f"{JOB} 7 q") == live.Change(JOB, 7, True)
    assert live.parse_change(f"{JOB} 0 -") == live.Change(JOB, 0, False)
    assert live.parse_change(f"{JOB} 0 u") == live.Change(JOB, 0, False, user_deleted=True)
    for bad in ("", f"{JOB} 7", f"{JOB} seven q", "not-a-uuid 7 q", f"{JOB} 7 x",
                f"{JOB} 7 q extra"):
        assert live.parse_change(bad) is None, bad


def test_a_stream_sends_each_new_document_once_with_increasing_ids() -> None:
    stream = live.Stream(JOB, OWNER)
    stream.offer(_row(1, "queued"), 3, b'{"a":1}')
    first = stream.next_event(0)
    assert first is not None and first.body == b'{"a":1}' and not first.finished
    stream.offer(_row(1, "queued"), 3, b'{"a":1}')  # the same document: nothing
    assert stream.next_event(0) is None
    stream.offer(_row(3), None, b'{"a":3}')
    stream.offer(_row(2), None, b'{"a":2}')  # an older read, after a newer one: dropped
    second = stream.next_event(0)
    assert second is not None and second.body == b'{"a":3}'
    assert stream.next_event(0) is None
    stream.offer(_row(4, "succeeded"), None, b'{"a":4}')
    last = stream.next_event(0)
    assert last is not None and last.finished
    ids = [tuple(int(part) for part in event.event_id.split("-")[:2])
           for event in (first, second, last)]
    assert ids == sorted(ids) and len(set(ids)) == 3


def test_only_the_latest_of_quick_changes_is_sent() -> None:
    stream = live.Stream(JOB, OWNER)
    for version in (1, 2, 3):
        stream.offer(_row(version), None, f'{{"v":{version}}}'.encode())
    event = stream.next_event(0)
    assert event is not None and event.body == b'{"v":3}'
    assert stream.next_event(0) is None


def test_last_event_id_matches_only_the_same_version_and_document() -> None:
    row, body = _row(5), b'{"progress":10}'
    event_id = live.event_id(5, 1_000, body)
    assert live.unchanged_since(event_id, row, body)
    assert not live.unchanged_since(event_id, _row(6), body)
    assert not live.unchanged_since(event_id, row, b'{"progress":20}')
    for bad in (None, "", "garbage", "5-1000"):
        assert not live.unchanged_since(bad, row, body)


def test_frames_end_after_a_finished_document_and_keep_alive_meanwhile() -> None:
    class Feed:
        closed: list[live.Stream] = []

        def close_stream(self, stream: live.Stream) -> None:
            self.closed.append(stream)

    feed = Feed()
    stream = live.Stream(JOB, OWNER)
    stream.offer(_row(1), None, b'{"s":"running"}')
    frames = live.stream_frames(feed, stream, keepalive_s=0.01)  # type: ignore[arg-type]
    first = next(frames)
    assert first.startswith(b"event: status\nid: 1-") and first.endswith(
        b'\ndata: {"s":"running"}\n\n')
    assert next(frames) == b": keep-alive\n\n"
    stream.offer(_row(2, "failed"), None, b'{"s":"failed"}')
    assert next(frames).endswith(b'data: {"s":"failed"}\n\n')
    assert list(frames) == [] and feed.closed == [stream]


def test_keep_alives_come_within_the_period_at_spread_out_moments() -> None:
    # Thousands of streams opened in the same second must not write their keep-alives in
    # the same instant ever after.
    firsts = [next(live.keepalive_waits(10)) for _ in range(200)]
    assert all(2 <= wait <= 10 for wait in firsts)
    assert max(firsts) - min(firsts) > 5
    waits = live.keepalive_waits(10)
    next(waits)
    later = [next(waits) for _ in range(200)]
    assert all(9 <= wait <= 10 for wait in later) and len(set(later)) > 100


def test_a_deleted_jobs_stream_ends() -> None:
    class Feed:
        def close_stream(self, stream: live.Stream) -> None:
            pass

    stream = live.Stream(JOB, OWNER)
    stream.end()
    assert list(live.stream_frames(Feed(), stream, keepalive_s=5)) == []  # type: ignore[arg-type]


def test_a_tick_renders_a_job_once_for_all_its_streams(monkeypatch: Any) -> None:
    # Under gevent a tick holds the whole process while it renders: with thousands of
    # streams over a few hundred jobs, one rendering per job, not per stream.
    rendered: list[uuid.UUID] = []

    def render(row: JobRow, position: int | None, now: datetime) -> jobs.StatusAnswer:
        rendered.append(row.id)
        body = f'{{"eta":{len(rendered)}}}'.encode()
        return jobs.StatusAnswer(body, jobs.body_digest(body), row, position)

    monkeypatch.setattr(live.jobs, "status_answer_in_memory", render)
    feed = live.LiveFeed(None, "", max_streams=10, eta_tick_s=5)  # type: ignore[arg-type]
    other = replace(_row(1), id=uuid.uuid4())
    streams = [live.Stream(row.id, OWNER) for row in (_row(1),) * 3 + (other,)]
    for stream, row in zip(streams, (_row(1),) * 3 + (other,), strict=True):
        stream.offer(row, None, b'{"eta":0}')
        assert stream.next_event(0) is not None
        feed._streams.setdefault(row.id, set()).add(stream)
    feed._tick()
    assert sorted(map(str, rendered)) == sorted([str(JOB), str(other.id)])
    sent = [stream.next_event(0) for stream in streams]
    assert all(event is not None and event.body.startswith(b'{"eta":') for event in sent)
