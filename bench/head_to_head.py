"""The head-to-head: ours against the stacks users would otherwise pick, R-celery (Flask +
Celery + Redis) and R-bullmq (Express + BullMQ + Redis), built as their docs show them
(bench/peers/), each with a Redis of its own, once as Redis ships (snapshots, no
append-only file) and once durable (`appendfsync always`: each write on disk before it is
answered, as PostgreSQL's commits are).

Every side runs the same job (four steps, progress written after each, steps that do no
work) behind the same two routes (create, status), measured in alternating rounds:

- throughput: `jobs` created over HTTP by 16 clients, first create sent → last done;
- idle create → done: one job at a time, from the client sending its create to the done
  time its worker wrote (the same host clock);
- CPU per job and per poll: user + system time of every process of the side (web, worker,
  store) over the run, divided by jobs or requests; memory: their PSS after the run;
- status polls/s: wrk, 16 connections, on one web process each, over jobs with a 10 KB
  result, each request carrying the ETag its side last answered for that job, as a
  browser's revalidation does (R-celery answers none, so it answers 200 each time).
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import redis

from bench import tools
from bench.figures import Figure, Rounds, p99
from bench.fixtures import RESULT_BYTES, insert_succeeded_job
from queue_jobs.db.store import QUEUE

BULLMQ_DIR = tools.PROJECT_DIR / "bench" / "peers" / "bullmq"
STEP_WEIGHTS = (30, 20, 20, 30)  # website-analysis's steps, as every side's job has them
JOBS_PER_OWNER = 20  # ours: MAX_ACTIVE_JOBS_PER_USER's default, so fair turns stay cheap
CLIENTS = 16
POLLED_JOBS = 20
BULLMQ_QUEUE = "website-analysis"
SideT = TypeVar("SideT", bound="Side")


class Host(Protocol):
    """What the head-to-head needs of bench.run.Bench."""

    workdir: Path
    env: dict[str, str]

    def log(self, name: str) -> Path: ...

    def add(self, figure: Figure) -> None: ...


@dataclass
class Side:
    """One stack under test: its URL, the roots of its process trees (web, worker, store)
    and how to learn when its jobs were done."""

    name: str
    url: str = ""
    web_roots: list[int] = field(default_factory=list)
    worker_roots: list[int] = field(default_factory=list)
    store_roots: list[int] = field(default_factory=list)

    @property
    def roots(self) -> list[int]:
        return self.web_roots + self.worker_roots + self.store_roots

    def headers(self, owner: str) -> dict[str, str]:
        return {}

    def done_at(self, job_id: str) -> float | None:
        """Epoch seconds the job was done, None until then."""
        raise NotImplementedError

    def done_since(self, since: float) -> list[float]:
        """Done times of the jobs done after `since` (epoch seconds)."""
        raise NotImplementedError

    def forget(self) -> None:
        """Drop the finished jobs between rounds."""

    def make_polled_job(self, http: Client) -> str:
        """A succeeded job with a 10 KB result, through the side's own API and worker."""
        job_id = http.create(self.headers("h2h_polled"),
                             {"url": "https://example.com/", "resultBytes": RESULT_BYTES})
        _done(self, job_id)
        return job_id


class Ours(Side):
    def __init__(self, db: Any, postmaster: int) -> None:
        super().__init__("ours", store_roots=[postmaster])
        self.db = db

    def headers(self, owner: str) -> dict[str, str]:
        return {"x-session-id": owner}

    def done_at(self, job_id: str) -> float | None:
        row = self.db.execute("SELECT extract(epoch FROM finished_at) FROM jobs WHERE id = %s "
                              "AND status = 'succeeded'", (job_id,)).fetchone()
        return float(row[0]) if row else None

    def done_since(self, since: float) -> list[float]:
        rows = self.db.execute("SELECT extract(epoch FROM finished_at) FROM jobs WHERE "
                               "status = 'succeeded' AND finished_at >= to_timestamp(%s)",
                               (since,)).fetchall()
        return [float(row[0]) for row in rows]

    def steps_seconds(self, job_id: str) -> float:
        """The steps' own time (their recorded durations): what a queue does not add."""
        row = self.db.execute("SELECT coalesce(sum(duration_ms), 0) FROM job_steps "
                              "WHERE job_id = %s", (job_id,)).fetchone()
        return float(row[0]) / 1000 if row else 0.0

    def make_polled_job(self, http: Client) -> str:
        """Ours takes no result size in its input: the succeeded job is written as the
        worker would leave it."""
        return str(insert_succeeded_job(self.db, "h2h_polled"))

    def forget(self) -> None:
        self.db.execute("TRUNCATE jobs, job_steps, procrastinate_events, procrastinate_jobs "
                        "CASCADE")


class Celery(Side):
    def __init__(self, name: str, redis_url: str) -> None:
        super().__init__(name)
        self.results = redis.Redis.from_url(f"{redis_url}/1")

    def done_at(self, job_id: str) -> float | None:
        raw = self.results.get(f"celery-task-meta-{job_id}")
        return _celery_done(raw)

    def done_since(self, since: float) -> list[float]:
        keys = list(self.results.scan_iter("celery-task-meta-*", count=1000))
        times = [_celery_done(raw) for raw in self.results.mget(keys)] if keys else []
        return [at for at in times if at is not None and at >= since]

    def forget(self) -> None:
        self.results.flushdb()


class BullMQ(Side):
    def __init__(self, name: str, redis_url: str) -> None:
        super().__init__(name)
        self.redis = redis.Redis.from_url(redis_url)

    def done_at(self, job_id: str) -> float | None:
        finished = self.redis.hget(f"bull:{BULLMQ_QUEUE}:{job_id}", "finishedOn")
        return int(finished) / 1000 if finished else None

    def done_since(self, since: float) -> list[float]:
        # The completed set's scores are the jobs' finishedOn (ms).
        done: list[tuple[bytes, float]] = self.redis.zrangebyscore(  # type: ignore[assignment]
            f"bull:{BULLMQ_QUEUE}:completed", int(since * 1000), "+inf", withscores=True)
        return [score / 1000 for _, score in done]


def _celery_done(raw: bytes | str | None) -> float | None:
    if raw is None:
        return None
    meta = json.loads(raw)
    if meta.get("status") != "SUCCESS":
        return None
    return datetime.fromisoformat(meta["date_done"]).timestamp()


# --- starting the sides ------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    jobs: int  # per throughput round
    idle_samples: int  # per round
    rounds: int
    poll_seconds: float
    paced_jobs: int  # ours, created at a steady rate below capacity
    paced_rate: float


FULL = Plan(jobs=1000, idle_samples=100, rounds=4, poll_seconds=3, paced_jobs=300,
            paced_rate=60)
SMOKE = Plan(jobs=20, idle_samples=3, rounds=1, poll_seconds=1, paced_jobs=5, paced_rate=20)


class Stacks:
    """Starts the sides' processes; `host` is bench.run.Bench (env, logs, figures)."""

    def __init__(self, host: Host, ours: Ours, stack: ExitStack) -> None:
        self.host = host
        self.ours = ours
        self.stack = stack

    def start_ours(self, web_processes: int) -> Ours:
        return self._launch(
            self.ours, "ours", web_processes,
            web=[str(tools.BIN / "gunicorn"), "-c", "webapp/gunicorn_conf.py", "wsgi:app"],
            ready="/readyz", env=self.host.env,
            worker=[str(tools.BIN / "python"), "-m", "bench.bench_worker", "--concurrency",
                    "4", "--queue", QUEUE])

    def start_celery(self, web_processes: int, *, durable: bool) -> Celery:
        redis_url, redis_pid = self._redis("celery", durable)
        side = Celery(_peer_name("R-celery", durable), redis_url)
        side.store_roots = [redis_pid]
        return self._launch(
            side, "celery", web_processes,
            web=[str(tools.BIN / "gunicorn"), "-c", "webapp/gunicorn_conf.py",
                 "bench.peers.celery_side:app"],
            ready="/healthz", env={**self.host.env, "REDIS_URL": redis_url},
            worker=[str(tools.BIN / "celery"), "-A", "bench.peers.celery_side:celery",
                    "worker", "--pool", "prefork", "--concurrency", "4", "--loglevel",
                    "WARNING"])

    def start_bullmq(self, web_processes: int, *, durable: bool) -> BullMQ:
        redis_url, redis_pid = self._redis("bullmq", durable)
        side = BullMQ(_peer_name("R-bullmq", durable), redis_url)
        side.store_roots = [redis_pid]
        return self._launch(
            side, "bullmq", web_processes,
            web=["node", str(BULLMQ_DIR / "server.js")], ready="/healthz",
            env={**self.host.env, "REDIS_URL": redis_url, "WORKER_CONCURRENCY": "4"},
            worker=["node", str(BULLMQ_DIR / "worker.js")])

    def _redis(self, peer: str, durable: bool) -> tuple[str, int]:
        return self.stack.enter_context(tools.redis_server(
            self.host.workdir, f"redis-{peer}{'-durable' if durable else ''}", durable=durable))

    def _launch(self, side: SideT, label: str, web_processes: int, *, web: list[str],
                ready: str, env: dict[str, str], worker: list[str]) -> SideT:
        """The side's web (on a free port, `web_processes` processes: gunicorn's
        WEB_CONCURRENCY, node:cluster's WEB_PROCESSES) and worker, until the block ends;
        returns once a job went through."""
        port = tools.free_port()
        side.url = f"http://127.0.0.1:{port}"
        web_env = {**env, "PORT": str(port), "WEB_CONCURRENCY": str(web_processes),
                   "WEB_PROCESSES": str(web_processes)}
        web_process = self.stack.enter_context(tools.process(
            web, web_env, ready_url=f"{side.url}{ready}", log=self.host.log(f"h2h-{label}-web")))
        worker_process = self.stack.enter_context(tools.process(
            worker, env, log=self.host.log(f"h2h-{label}-worker")))
        side.web_roots, side.worker_roots = [web_process.pid], [worker_process.pid]
        _wait_for_job(side, f"{side.name}'s worker")
        return side


def _peer_name(peer: str, durable: bool) -> str:
    return peer + (" (appendfsync always)" if durable else "")


def _wait_for_job(side: Side, what: str) -> None:
    """One job through the side: its worker is up and connected."""
    with Client(side.url) as client:
        _done(side, client.create(side.headers("h2h_warmup")))


def _done(side: Side, job_id: str) -> float:
    """Waits for the job to be done; its done time."""
    found: list[float] = []

    def done() -> bool:
        at = side.done_at(job_id)
        if at is not None:
            found.append(at)
        return at is not None

    # Every 5 ms: the latency is the side's own done time minus the send, so how often this
    # looks only sets the idle gap before the next job; looking more often would take CPU
    # from the side under test (a PostgreSQL query or a Redis GET each time).
    _wait(done, f"job {job_id} of {side.name}", pause=0.005)
    return found[0]


def _wait(condition: Callable[[], bool], what: str, timeout: float = 120,
          pause: float = 0.0005) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(pause)


# --- a plain HTTP client: cheap per request, the same for every side -----------------------


class Client:
    """One keep-alive connection (http.client: far less client CPU per request than
    requests, which would compete with the side under test for the two cores)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1",
                                                     parts.port, timeout=30)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.connection.close()

    def create(self, headers: dict[str, str], body: dict[str, Any] | None = None) -> str:
        payload = json.dumps(body or {"url": "https://example.com/"})
        self.connection.request("POST", "/api/v1/jobs/website-analysis", payload,
                                {"Content-Type": "application/json", **headers})
        answer = self.connection.getresponse()
        text = answer.read()
        if answer.status != 201:
            raise RuntimeError(f"create answered {answer.status}: {text[:300]!r}")
        return str(json.loads(text)["jobId"])

    def status(self, job_id: str, headers: dict[str, str]) -> tuple[int, str | None]:
        self.connection.request("GET", f"/api/v1/jobs/{job_id}/status", headers=headers)
        answer = self.connection.getresponse()
        answer.read()
        return answer.status, answer.getheader("ETag")


def create_many(side: Side, total: int, tag: str) -> None:
    """`total` creates from CLIENTS connections at once; ours' owners hold JOBS_PER_OWNER
    jobs each (one client's), as fair use keeps them."""
    share = [total // CLIENTS + (1 if n < total % CLIENTS else 0) for n in range(CLIENTS)]
    failures: list[BaseException] = []

    def client(number: int) -> None:
        try:
            with Client(side.url) as http:
                for n in range(share[number]):
                    http.create(side.headers(f"h2h_{tag}_{number}_{n // JOBS_PER_OWNER}"))
        except BaseException as error:  # reported by the caller
            failures.append(error)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


# --- the measurements ---------------------------------------------------------------------


@dataclass(frozen=True)
class Drain:
    jobs_per_s: float
    cpu_ms_per_job: float
    parts_ms_per_job: tuple[float, float, float]  # web, worker, store


def _cpu_parts(side: Side) -> tuple[float, float, float]:
    return (tools.cpu_seconds(side.web_roots), tools.cpu_seconds(side.worker_roots),
            tools.cpu_seconds(side.store_roots))


def drain(side: Side, total: int) -> Drain:
    tag = uuid.uuid4().hex[:8]
    before = _cpu_parts(side)
    started = time.time()
    create_many(side, total, tag)
    done: list[float] = []

    def all_done() -> bool:
        done[:] = side.done_since(started)
        return len(done) >= total

    _wait(all_done, f"{total} jobs of {side.name}", timeout=600, pause=0.2)
    parts = tuple((after - earlier) / total * 1000
                  for after, earlier in zip(_cpu_parts(side), before, strict=True))
    side.forget()
    return Drain(total / (max(done) - started), sum(parts), (parts[0], parts[1], parts[2]))


def idle_latencies(side: Side, samples: int) -> list[float]:
    """create → done, ms, one job at a time."""
    found = []
    with Client(side.url) as http:
        for _ in range(samples):
            sent = time.time()
            job_id = http.create(side.headers("h2h_idle"))
            found.append((_done(side, job_id) - sent) * 1000)
    side.forget()
    return found


def polled_jobs(side: Side) -> list[tuple[str, str | None]]:
    """POLLED_JOBS finished jobs with a 10 KB result, made through the side's own API and
    worker, with the ETag the side answers for each (None: it gives none)."""
    jobs = []
    with Client(side.url) as http:
        for _ in range(POLLED_JOBS):
            job_id = side.make_polled_job(http)
            status, etag = http.status(job_id, side.headers("h2h_polled"))
            assert status == 200, status
            jobs.append((job_id, etag))
    return jobs


@dataclass(frozen=True)
class Polls:
    per_s: float
    cpu_us_per_poll: float


def polls(side: Side, jobs: list[tuple[str, str | None]], seconds: float, workdir: Path,
          *, revalidate: bool) -> Polls:
    """wrk over CLIENTS connections cycling through the jobs; revalidate: each request
    carries its job's ETag (when the side gave one). CPU: the web process and the store."""
    headers = [{**side.headers("h2h_polled"),
                **({"If-None-Match": etag} if revalidate and etag else {})}
               for _, etag in jobs]
    paths = [f"/api/v1/jobs/{job_id}/status" for job_id, _ in jobs]
    roots = side.web_roots + side.store_roots
    cpu_before = tools.cpu_seconds(roots)
    load = tools.wrk_cycle(side.url, paths, headers, seconds=seconds, connections=CLIENTS,
                           workdir=workdir)
    cpu = tools.cpu_seconds(roots) - cpu_before
    return Polls(load.requests_per_s, cpu / load.total * 1e6)


def run(host: Host, ours: Ours, plan: Plan) -> None:
    """Both halves: jobs (throughput, latency, CPU, memory; web as deployed, 2 processes)
    and polls (one web process a side)."""
    with ExitStack() as stack:
        stacks = Stacks(host, ours, stack)
        sides: list[Side] = [stacks.start_ours(2), stacks.start_celery(2, durable=False),
                             stacks.start_bullmq(2, durable=False),
                             stacks.start_celery(2, durable=True),
                             stacks.start_bullmq(2, durable=True)]
        jobs_half(host, sides, plan)
    with ExitStack() as stack:
        stacks = Stacks(host, ours, stack)
        sides = [stacks.start_ours(1), stacks.start_celery(1, durable=False),
                 stacks.start_bullmq(1, durable=False)]
        polls_half(host, sides, plan)


def _rotated(sides: list[Side], round_number: int) -> Iterator[Side]:
    """Each round starts with another side: none is always first or last."""
    shift = round_number % len(sides)
    yield from sides[shift:] + sides[:shift]


def jobs_half(host: Host, sides: list[Side], plan: Plan) -> None:
    drains: dict[str, list[Drain]] = {side.name: [] for side in sides}
    latencies: dict[str, list[float]] = {side.name: [] for side in sides}
    for round_number in range(plan.rounds):
        for side in _rotated(sides, round_number):
            drains[side.name].append(drain(side, plan.jobs))
            latencies[side.name] += idle_latencies(side, plan.idle_samples)
    ours, peers = sides[0], sides[1:]
    memory = {side.name: tools.pss_mb(side.roots) for side in sides}
    processes = {side.name: tools.process_count(side.roots) for side in sides}
    for peer in peers:
        rounds = Rounds(tuple(d.jobs_per_s for d in drains[ours.name]),
                        tuple(d.jobs_per_s for d in drains[peer.name]))
        target = "≥ 1.0" if peer.name == "R-celery" else "reported"
        host.add(Figure(f"throughput ÷ {peer.name}: {plan.jobs} jobs created over HTTP, "
                        "4 steps each, first create → last done",
                        round(rounds.ours_median), round(rounds.reference_median), "jobs/s",
                        target, note=f"{CLIENTS} clients; web 2 processes a side",
                        round_values=tuple(zip(rounds.ours, rounds.reference, strict=True))))
    for peer in peers:
        mine = statistics.median(d.cpu_ms_per_job for d in drains[ours.name])
        theirs = statistics.median(d.cpu_ms_per_job for d in drains[peer.name])
        host.add(Figure(f"CPU per job (web + worker + store) ÷ {peer.name}", round(mine, 2),
                        round(theirs, 2), "ms", "reported",
                        note="user + system time of every process of the side over the "
                             "throughput run ÷ jobs; median of the rounds; web / worker / "
                             f"store: ours {_parts(drains[ours.name])}, "
                             f"{peer.name} {_parts(drains[peer.name])}"))
    best_p99 = min(p99(latencies[peer.name]) for peer in peers)
    best = min(peers, key=lambda peer: p99(latencies[peer.name]))
    spread = "; ".join(f"{peer.name} p50 {statistics.median(latencies[peer.name]):.2f} / "
                       f"p99 {p99(latencies[peer.name]):.2f}" for peer in peers)
    ours_p99 = p99(latencies[ours.name])
    host.add(Figure(f"idle create → done p99 ÷ the best peer's ({best.name})",
                    round(ours_p99, 2), round(best_p99, 2), "ms", "≤ 1.0",
                    round_values=((ours_p99, best_p99),),
                    note=f"{len(latencies[ours.name])} jobs a side, one at a time, client "
                         f"sends the create → the worker's done time (BullMQ's in whole "
                         f"ms); {spread}"))
    host.add(Figure("idle create → done p50", round(statistics.median(latencies[ours.name]), 2),
                    None, "ms", "reported", note="as above"))
    for peer in peers:
        host.add(Figure(f"memory (PSS: web + worker + store) ÷ {peer.name}",
                        round(memory[ours.name]), round(memory[peer.name]), "MiB", "reported",
                        note=f"after the runs; processes: ours {processes[ours.name]}, "
                             f"{peer.name} {processes[peer.name]}"))


def _parts(drains: list[Drain]) -> str:
    return " / ".join(f"{statistics.median(d.parts_ms_per_job[n] for d in drains):.2f}"
                      for n in range(3))


def polls_half(host: Host, sides: list[Side], plan: Plan) -> None:
    jobs = {side.name: polled_jobs(side) for side in sides}
    for revalidate in (True, False):
        measured: dict[str, list[Polls]] = {side.name: [] for side in sides}
        for round_number in range(plan.rounds):
            for side in _rotated(sides, round_number):
                measured[side.name].append(polls(side, jobs[side.name], plan.poll_seconds,
                                                 host.workdir, revalidate=revalidate))
        ours, peers = sides[0], sides[1:]
        kind = ("as a browser sends them (If-None-Match of the last answer)" if revalidate
                else "with no validator (200 each time)")
        for peer in peers:
            target = revalidate and peer.name == "R-bullmq"
            rate = Rounds(tuple(p.per_s for p in measured[ours.name]),
                          tuple(p.per_s for p in measured[peer.name]))
            host.add(Figure(f"status polls/s {kind} ÷ {peer.name}", round(rate.ours_median),
                            round(rate.reference_median), "req/s",
                            "≥ 1.0" if target else "reported",
                            note=f"one web process a side; wrk, {CLIENTS} connections, "
                                 f"{POLLED_JOBS} succeeded jobs with a 10 KB result",
                            round_values=tuple(zip(rate.ours, rate.reference, strict=True))))
            cpu = Rounds(tuple(p.cpu_us_per_poll for p in measured[ours.name]),
                         tuple(p.cpu_us_per_poll for p in measured[peer.name]))
            host.add(Figure(f"CPU per status poll {kind} (web + store) ÷ {peer.name}",
                            round(cpu.ours_median), round(cpu.reference_median), "µs",
                            "≤ 1.0" if target else "reported",
                            note="user + system time of the web process and the store ÷ "
                                 "requests",
                            round_values=tuple(zip(cpu.ours, cpu.reference, strict=True))))


def queue_added_latency(host: Host, ours: Ours, plan: Plan, samples: int) -> None:
    """Ours: create → done minus the steps' own time, idle (one job at a time) and under a
    steady load of creates below capacity."""
    with ExitStack() as stack:
        side = Stacks(host, ours, stack).start_ours(2)
        idle = _queue_added(side, samples, rate=None)
        loaded = _queue_added(side, plan.paced_jobs, rate=plan.paced_rate)
    note = "create sent → finished_at, minus the steps' recorded durations"
    host.add(Figure("queue-added latency p50, idle", round(statistics.median(idle), 2), None,
                    "ms", "≤ 10", note=f"{len(idle)} jobs one at a time; {note}"))
    host.add(Figure("queue-added latency p99, idle", round(p99(idle), 2), None, "ms",
                    "≤ 50", note=f"{len(idle)} jobs one at a time; {note}"))
    host.add(Figure("queue-added latency p50 / p99 under a steady load",
                    round(statistics.median(loaded), 2), None, "ms", "reported",
                    note=f"p99 {p99(loaded):.2f} ms; {len(loaded)} jobs created at "
                         f"{plan.paced_rate:g}/s; {note}"))


def _queue_added(side: Ours, total: int, rate: float | None) -> list[float]:
    sent: dict[str, float] = {}
    with Client(side.url) as http:
        started = time.monotonic()
        for n in range(total):
            if rate:  # a steady pace, not a wait for a condition
                time.sleep(max(0.0, started + n / rate - time.monotonic()))
            at = time.time()
            job_id = http.create(side.headers(f"h2h_added_{n // JOBS_PER_OWNER}"))
            sent[job_id] = at
            if not rate:
                _done(side, job_id)
    _wait(lambda: all(side.done_at(job_id) is not None for job_id in sent), "the jobs",
          pause=0.1)
    added = []
    for job_id, at in sent.items():
        done = side.done_at(job_id)
        assert done is not None
        added.append((done - at - side.steps_seconds(job_id)) * 1000)
    side.forget()
    return added
