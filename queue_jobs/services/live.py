"""Live status in a web process: one LISTEN connection, fanned out to event streams and to
status polls answered from memory.

The database NOTIFYs `jobs_changed` with `<job id> <version> <q|->` whenever a write can
change a job's status document (sql/functions/jobs_notify_change.sql). This process:

- remembers the newest version it was told of per job, and a snapshot of each job it read
  for a poll (the row without its result, its queue position), valid while no newer version
  was announced, no queue move happened since (for a queued job: `q` changes move every
  queued job's position), and the connection never dropped since the read. A poll of a job
  with a valid snapshot costs no database round trip (status_from_memory);
- reads a changed job again once, for all of its event streams here, and offers each
  stream the new document (a stream drops one equal to what it already has); a queue move
  re-reads every streamed queued job in one query.

A lost connection drops every version and snapshot (they can no longer be trusted), and
once listening again every stream's job is read again: a change made meanwhile reaches its
streams then, never silently lost. Threads here are greenlets under gunicorn's gevent
worker (webapp/gunicorn_conf.py) and real threads elsewhere (tests, flask run).
"""

from __future__ import annotations

import fcntl
import logging
import random
import termios
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import psycopg

from queue_jobs.db import notifications, store
from queue_jobs.db.connections import Backoff, first_line
from queue_jobs.models import JobRow, Owner
from queue_jobs.observability import live_metrics
from queue_jobs.services import jobs
from queue_jobs.services.connections import ConnectionPool, autocommit
from queue_jobs.services.jobs import StatusAnswer

log = logging.getLogger(__name__)

LIVENESS_S = 5.0  # a quiet listening connection is checked this often
REMEMBERED_JOBS = 100_000  # versions and snapshots kept per process (least recent go)
# A busy queue moves with every start: its streamed jobs' positions are read again at most
# this often (one statement for all of them), whatever the rate of moves.
QUEUE_REREAD_EVERY_S = 0.25
FINISHED = ("succeeded", "failed")


@dataclass(frozen=True)
class Change:
    job_id: uuid.UUID
    version: int  # 0: the job was deleted
    moves_queue: bool  # `q`: other queued jobs' positions may have moved
    user_deleted: bool = False  # `u`: job_id is a deleted user's id


def parse_change(payload: str) -> Change | None:
    parts = payload.split(" ")
    if len(parts) != 3 or parts[2] not in ("q", "-", "u"):
        return None
    try:
        return Change(uuid.UUID(parts[0]), int(parts[1]), parts[2] == "q", parts[2] == "u")
    except ValueError:
        return None


@dataclass(frozen=True)
class ReadToken:
    """Taken before a read: what the process knew then, to tell whether the read is current."""

    generation: int
    queue_epoch: int


@dataclass
class Snapshot:
    row: JobRow  # without its result
    position: int | None
    generation: int
    queue_epoch: int
    # The estimate and the answer last rendered from it: a job polled every second mostly
    # gets the same estimate, so the same bytes and ETag, without rendering them again.
    # (One tuple: threads may set it at once, both with the same answer.)
    rendered: tuple[int | None, StatusAnswer] | None = None


@dataclass(frozen=True)
class SseEvent:
    event_id: str
    body: bytes
    finished: bool


def _active_answer(snapshot: Snapshot) -> StatusAnswer | None:
    """An active job's answer from its snapshot; None if its estimate needs the database."""
    eta = jobs.estimate_in_memory(snapshot.row, snapshot.position, datetime.now(UTC))
    if isinstance(eta, jobs.Cold):
        return None
    rendered = snapshot.rendered
    if rendered is not None and rendered[0] == eta:
        return rendered[1]
    answer = jobs.status_answer(snapshot.row, snapshot.position, eta)
    snapshot.rendered = (eta, answer)
    return answer


class Stream:
    """One open event stream: the newest document offered, until the client takes it."""

    def __init__(self, job_id: uuid.UUID, owner: Owner) -> None:
        self.job_id = job_id
        self.owner = owner
        self.row: JobRow | None = None  # as last read: what the ETA tick re-renders
        self.position: int | None = None
        self._ready = threading.Condition()
        self._pending: SseEvent | None = None
        self._last_body: bytes | None = None  # the last offered, sent or not
        self._version = -1
        self._last_ms = 0
        self._ended = False

    @property
    def active(self) -> bool:
        return self.row is not None and self.row.status not in FINISHED

    def offer(self, row: JobRow, position: int | None, body: bytes) -> None:
        with self._ready:
            if row.version < self._version or self._ended:
                return  # a read older than one already offered
            self.row, self.position = row, position
            if body == self._last_body:
                return
            self._version, self._last_body = row.version, body
            self._last_ms = max(self._last_ms + 1, int(time.time() * 1000))
            self._pending = SseEvent(event_id(row.version, self._last_ms, body), body,
                                     row.status in FINISHED)
            self._ready.notify_all()

    def end(self) -> None:
        """The job is gone (deleted): the stream closes."""
        with self._ready:
            self._ended = True
            self._ready.notify_all()

    def next_event(self, timeout: float) -> SseEvent | None:
        """The next event; None after `timeout` with nothing new, or once ended (`ended`)."""
        with self._ready:
            self._ready.wait_for(lambda: self._pending is not None or self._ended, timeout)
            event, self._pending = self._pending, None
            return event

    @property
    def ended(self) -> bool:
        return self._ended


def event_id(version: int, ms: int, body: bytes) -> str:
    """`<row version>-<ms>-<digest>`: increases per job; the digest tells a resuming
    client's document from the current one (Last-Event-ID)."""
    return f"{version}-{ms}-{jobs.body_digest(body)[:12]}"


def unchanged_since(last_event_id: str | None, row: JobRow, body: bytes) -> bool:
    if not last_event_id:
        return False
    parts = last_event_id.split("-")
    return (len(parts) == 3 and parts[0] == str(row.version)
            and parts[2] == jobs.body_digest(body)[:12])


class StreamsFull(Exception):
    """This process holds as many streams as it may: the client polls instead."""


class LiveFeed:
    """The process's change feed: started by its first user, stopped by close()."""

    def __init__(self, pool: ConnectionPool, conninfo: str, *, max_streams: int,
                 eta_tick_s: float, application_name: str = "jobs-web-live") -> None:
        self._pool = pool
        self._conninfo = conninfo
        self._max_streams = max_streams
        self._eta_tick_s = eta_tick_s
        self._application_name = application_name
        self._lock = threading.Condition()
        self._started = False
        self._stopped = threading.Event()
        self._connected = False
        self._listen_fd: int | None = None
        self._generation = 0
        self._queue_epoch = 0
        self._versions: OrderedDict[uuid.UUID, int] = OrderedDict()
        self._snapshots: OrderedDict[uuid.UUID, Snapshot] = OrderedDict()
        self._streams: dict[uuid.UUID, set[Stream]] = {}
        self._stream_count = 0
        self._pending: set[uuid.UUID] = set()
        self._queue_moved = False
        self._reread_all = False
        self.answered_from_memory = 0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        for target, name in ((self._listen, "live-listen"), (self._refresh, "live-refresh")):
            threading.Thread(target=target, name=name, daemon=True).start()

    def close(self) -> None:
        self._stopped.set()
        with self._lock:
            self._lock.notify_all()

    def _done(self) -> bool:
        """Closed, or its app's pool was (an app that is gone takes its feed with it)."""
        if self._pool.closed:
            self._stopped.set()
        return self._stopped.is_set()

    @property
    def connected(self) -> bool:
        return self._connected

    # -- status polls -----------------------------------------------------------------

    def token(self) -> ReadToken | None:
        """Before a read whose result status_from_memory may use later; None while not
        listening (nothing read now may be trusted later)."""
        self.start()
        with self._lock:
            if not self._connected:
                return None
            return ReadToken(self._generation, self._queue_epoch)

    def remember(self, token: ReadToken | None, row: JobRow, position: int | None) -> None:
        if token is None:
            return
        with self._lock:
            if (not self._connected or token.generation != self._generation
                    or self._versions.get(row.id, 0) > row.version):
                return  # the read may predate a change this process was told of
            self._snapshots[row.id] = Snapshot(replace(row, result=None, finished_etag=None),
                                               position, token.generation, token.queue_epoch)
            self._snapshots.move_to_end(row.id)
            if len(self._snapshots) > REMEMBERED_JOBS:
                self._snapshots.popitem(last=False)

    def status_from_memory(self, job_id: uuid.UUID, owner: Owner, known_etags: Iterable[str],
                           any_etag: bool) -> StatusAnswer | None:
        """The status answer without a database round trip, when this process knows the
        job is unchanged since it last read it; None: read it."""
        with self._lock:
            snapshot = self._snapshots.get(job_id)
            if (snapshot is None or not self._connected
                    or snapshot.generation != self._generation
                    or self._versions.get(job_id, 0) > snapshot.row.version
                    or (snapshot.row.status == "queued"
                        and snapshot.queue_epoch != self._queue_epoch)):
                return None
        row = snapshot.row
        if not row.visible_to(owner):
            return None  # the database tells 404 from 401
        if self._notifications_waiting():
            return None
        answer: StatusAnswer | None
        if row.status in FINISHED:
            etag = jobs.finished_etag(row.id, row.version)
            answer = StatusAnswer(None, etag) if any_etag or etag in known_etags else None
        else:
            answer = _active_answer(snapshot)
        if answer is not None:
            self.answered_from_memory += 1
            live_metrics.FROM_MEMORY.inc()
        return answer

    def newest_version(self, job_id: uuid.UUID) -> int | None:
        """The newest version of the job this process was told of (None: none since the
        listener last connected, or forgotten)."""
        with self._lock:
            return self._versions.get(job_id)

    def written_here(self, job_id: uuid.UUID, version: int) -> None:
        """This process committed `version` of the job: its own next poll must not be
        answered from before it, even if the notification has not arrived yet. (Another
        process may answer from before it until the notification reaches it, a few ms.)"""
        with self._lock:
            self._saw_version(job_id, version)

    # -- event streams ----------------------------------------------------------------

    def open_stream(self, job_id: uuid.UUID, owner: Owner,
                    last_event_id: str | None = None) -> Stream:
        """A stream of the job (404/401 raised as /status does), its current document
        pending unless `last_event_id` says the client has it. Read after the stream was
        registered, so that no change can fall in between."""
        self.start()
        stream = Stream(job_id, owner)
        with self._lock:
            if self._stream_count >= self._max_streams:
                raise StreamsFull()
            self._streams.setdefault(job_id, set()).add(stream)
            self._stream_count += 1
        live_metrics.STREAMS_OPEN.inc()
        try:
            token = self.token()
            with autocommit(self._pool) as conn:
                answer = jobs.job_status(conn, job_id, owner)
        except BaseException:
            self.close_stream(stream)
            raise
        row, body = answer.row, answer.body
        assert row is not None and body is not None  # no known tags were given
        self.remember(token, row, answer.position)
        stream.offer(row, answer.position, body)
        if row.status not in FINISHED and unchanged_since(last_event_id, row, body):
            stream.next_event(0)  # the client has it: wait for the next change
        return stream

    def close_stream(self, stream: Stream) -> None:
        with self._lock:
            streams = self._streams.get(stream.job_id)
            if streams is None or stream not in streams:
                return
            streams.discard(stream)
            self._stream_count -= 1
            if not streams:
                del self._streams[stream.job_id]
        live_metrics.STREAMS_OPEN.dec()

    @property
    def stream_count(self) -> int:
        return self._stream_count

    # -- the listening connection -------------------------------------------------------

    def _listen(self) -> None:
        backoff = Backoff()
        while not self._done():
            try:
                for payload in notifications.job_changes(
                        self._conninfo, liveness_s=LIVENESS_S, stopped=self._done,
                        application_name=self._application_name, on_socket=self._on_socket):
                    if payload is None:
                        if not self._connected:
                            self._on_listening()
                            backoff.reset()
                    else:
                        self._on_change(payload)
            except psycopg.Error as error:
                self._on_gap(error)
                self._stopped.wait(backoff.delay())
            except Exception:  # a bug must not end live status for the process
                log.exception("live status listener failed")
                self._on_gap(None)
                self._stopped.wait(backoff.delay())
        self._on_gap(None)

    def _on_socket(self, fileno: int) -> None:
        self._listen_fd = fileno

    def _notifications_waiting(self) -> bool:
        """Bytes on the listening socket that the listener has not read yet (it may be
        waiting for its turn in a busy process): what this process remembers may be
        stale, so no answer from memory until they are read."""
        fileno = self._listen_fd
        if fileno is None:
            return True
        # FIONREAD, not select(): under gevent, select() yields to the hub on every call,
        # a greenlet switch per poll answered from memory.
        unread = bytearray(4)
        try:
            fcntl.ioctl(fileno, termios.FIONREAD, unread)
        except (OSError, ValueError):
            return True
        return unread != bytes(4)

    def _on_listening(self) -> None:
        with self._lock:
            self._connected = True
            self._generation += 1
            self._reread_all = True  # whatever changed while not listening
            self._lock.notify_all()
        log.info("live status: listening for job changes")

    def _on_gap(self, error: BaseException | None) -> None:
        with self._lock:
            was_connected = self._connected
            self._connected = False
            self._listen_fd = None
            self._generation += 1
            self._versions.clear()
            self._snapshots.clear()
        if was_connected:
            live_metrics.LISTENER_GAPS.inc()
            if error is not None:
                log.warning("live status: lost the listening connection (%s); polls read "
                            "the database until it is back", first_line(error))

    def _on_change(self, payload: str) -> None:
        change = parse_change(payload)
        if change is None:
            log.warning("live status: ignored a malformed notification %r", payload[:100])
            return
        with self._lock:
            if change.user_deleted:  # its tokens must get 401, not a remembered answer
                self._generation += 1
                self._snapshots.clear()
                return
            # a deleted job: nothing read before counts
            self._saw_version(change.job_id, change.version or 2**62)
            if change.moves_queue:
                self._queue_epoch += 1
                self._queue_moved = True
            if change.job_id in self._streams:
                self._pending.add(change.job_id)
            if change.job_id in self._streams or change.moves_queue:
                self._lock.notify_all()

    def _saw_version(self, job_id: uuid.UUID, version: int) -> None:
        """Under the lock: snapshots older than `version` are void from now on."""
        if self._versions.get(job_id, 0) < version:
            self._versions[job_id] = version
            self._versions.move_to_end(job_id)
            if len(self._versions) > REMEMBERED_JOBS:
                self._versions.popitem(last=False)

    # -- reading changed jobs for the streams -----------------------------------------

    def _refresh(self) -> None:
        next_tick = time.monotonic() + self._eta_tick_s
        next_queue_read = 0.0
        while not self._stopped.is_set():
            with self._lock:
                while True:  # not wait_for: a queue move must be able to shorten the wait
                    now = time.monotonic()
                    queue_due = bool(self._queue_moved and self._streams
                                     and now >= next_queue_read)
                    if (self._pending or self._reread_all or queue_due or now >= next_tick
                            or self._stopped.is_set()):
                        break
                    wake = next_tick
                    if self._queue_moved and self._streams:
                        wake = min(wake, next_queue_read)
                    self._lock.wait(max(0.0, wake - now))
                due = self._due_jobs(with_queued=queue_due)
            if queue_due:
                next_queue_read = now + QUEUE_REREAD_EVERY_S
            try:
                if due:
                    self._reread(due)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self._eta_tick_s
                    self._tick()
            except Exception as error:  # the database is down: try again soon
                log.warning("live status: could not read changed jobs (%s)", first_line(error))
                with self._lock:
                    self._pending.update(due)
                self._stopped.wait(1.0)

    def _due_jobs(self, *, with_queued: bool) -> set[uuid.UUID]:
        """Under the lock: the jobs whose streams need a new read, taken from the to-do;
        `with_queued`: every streamed queued job too (the queue moved)."""
        due = set(self._pending)
        if self._reread_all:
            due.update(self._streams)
            self._queue_moved = False
        elif with_queued:
            due.update(job_id for job_id, streams in self._streams.items()
                       if any(stream.row is None or stream.row.status == "queued"
                              for stream in streams))
            self._queue_moved = False
        self._pending.clear()
        self._reread_all = False
        return due

    def _reread(self, job_ids: set[uuid.UUID]) -> None:
        token = self.token()
        with autocommit(self._pool) as conn:
            rows = {row.id: row for row in store.jobs_by_ids(conn, sorted(job_ids))}
            rendered = jobs.render_statuses(conn, list(rows.values()))
        for job_id in job_ids:
            row = rows.get(job_id)
            for stream in self._streams_of(job_id):
                if row is None:
                    stream.end()
                else:
                    position, body = rendered[job_id]
                    stream.offer(row, position, body)
            if row is not None:
                self.remember(token, row, rendered[job_id][0])

    def _tick(self) -> None:
        """The estimate counts down while nothing is written: active streams get their
        document rendered again from memory, sent only if it changed. A job's streams
        share one rendering (they hold the same read of it), and the CPU is given back
        after each job: under gevent a tick over thousands of streams would otherwise
        hold every request of the process for its whole length."""
        now = datetime.now(UTC)
        with self._lock:
            groups = [list(group) for group in self._streams.values()]
        for group in groups:
            rendered: dict[tuple[int, int | None], bytes | None] = {}
            for stream in group:
                row, position = stream.row, stream.position
                if row is None or not stream.active:
                    continue
                if (row.version, position) not in rendered:
                    answer = jobs.status_answer_in_memory(row, position, now)
                    rendered[(row.version, position)] = answer.body if answer else None
                body = rendered[(row.version, position)]
                if body is not None:
                    stream.offer(row, position, body)
            time.sleep(0)  # a yield: a greenlet switch under gevent

    def _streams_of(self, job_id: uuid.UUID) -> list[Stream]:
        with self._lock:
            return list(self._streams.get(job_id, ()))


def sse_frame(event: SseEvent) -> bytes:
    return b"event: status\nid: " + event.event_id.encode() + b"\ndata: " + event.body + b"\n\n"


KEEPALIVE_FRAME = b": keep-alive\n\n"


def keepalive_waits(keepalive_s: float) -> Iterator[float]:
    """The quiet waits of one stream before each keep-alive: never longer than
    `keepalive_s`, and at random. Streams opened together (a deploy, a reconnect wave after
    a network blip) would otherwise write their keep-alives together for good: thousands of
    writes in one instant every `keepalive_s`, and every poll of the process waits behind
    them. The first wait spreads them over most of the period; the later ones stay close
    to it, so the rate of keep-alives hardly grows."""
    yield keepalive_s * random.uniform(0.2, 1.0)
    while True:
        yield keepalive_s * random.uniform(0.9, 1.0)


def stream_frames(feed: LiveFeed, stream: Stream, *, keepalive_s: float) -> Iterator[bytes]:
    """The bytes of one event stream: each event as it comes (the first is pending when
    the stream opens, unless the client had it), a keep-alive comment after `keepalive_s`
    of quiet; it ends after a finished document or when the job is gone."""
    waits = keepalive_waits(keepalive_s)
    try:
        while True:
            event = stream.next_event(next(waits))
            if event is not None:
                yield sse_frame(event)
                if event.finished:
                    return
            elif stream.ended:
                return
            else:
                yield KEEPALIVE_FRAME
    finally:
        feed.close_stream(stream)
