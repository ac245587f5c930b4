"""`make bench`: the service measured against small references in the same run.

Every figure is a ratio to a reference measured on this machine in this run (absolute
numbers drift from run to run on 2 shared cores), A and B alternating, several rounds,
median reported. Writes bench/results.md (figure, ours, reference, ratio, target, pass)
and bench/results.json. `--smoke` runs each benchmark for about a second (make test does,
so they cannot rot); its figures mean nothing.

The services run as in production: our gunicorn with webapp/gunicorn_conf.py (2 processes x
8 threads), the references under the same settings, workers as subprocesses, one embedded
PostgreSQL for all of them. Fair-use limits are lifted for the load (one client address
and thousands of jobs a second would be refused otherwise); see the README.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
import requests
from psycopg import sql
from psycopg.conninfo import make_conninfo

from bench import head_to_head, tools
from bench.figures import Figure, Rounds, p99
from bench.fixtures import insert_succeeded_job
from bench.stream_client import StreamClient
from queue_jobs import models
from queue_jobs.db import store
from queue_jobs.db.embedded import start_embedded, uri_for
from queue_jobs.db.migrate import apply_migrations
from queue_jobs.services import fair_use

BENCH_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable
OURS_PORT, REFERENCE_PORT = tools.free_port(), tools.free_port()
OURS, REFERENCE = f"http://127.0.0.1:{OURS_PORT}", f"http://127.0.0.1:{REFERENCE_PORT}"
SESSION = "bench_session_poller"
CREATE_BODY = '{"url": "https://example.com/"}'  # what wrk POSTs to create a job
REFERENCE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_items (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload jsonb NOT NULL
)"""
ONE_PROCESS = "each side one gunicorn process x 8 threads"
WORKER_CONCURRENCY = 4  # WORKER_CONCURRENCY's default
POLLERS, POLLER_GROUPS = 50, 10  # status pollers at the fixed rate (tools.hey)


@dataclass(frozen=True)
class Plan:
    seconds: float  # per load run
    rounds: int
    running_jobs: int
    poll_rate: int  # status polls per second for the latency figure
    latency_samples: int
    small_rows: int
    large_rows: int
    streams: int  # idle event streams held by one web process
    streamed_jobs: int  # the queued jobs they follow (several streams each)
    changes: int  # progress updates fanned out to those streams
    stream_rounds: int  # alternating rounds of the polls beside the streams
    stream_poll_rate: int  # fixed-rate status polls per second on one web process
    eta_step_s: float  # each step of the ETA benchmark's jobs: this, +/- half of it
    eta_warm_jobs: int
    eta_backlog: int  # created at once (case a)
    eta_one_by_one: int  # created one at a time on an idle worker (case b)
    fair_step_s: float
    fair_backlog: int  # one owner's jobs ahead of another owner's one
    fair_rounds: int


FULL = Plan(seconds=3, rounds=4, running_jobs=50, poll_rate=1000,
            latency_samples=200, small_rows=10_000, large_rows=1_000_000,
            streams=5000, streamed_jobs=300, changes=300, stream_rounds=3,
            stream_poll_rate=300, eta_step_s=1.0, eta_warm_jobs=8, eta_backlog=40,
            eta_one_by_one=6, fair_step_s=0.2, fair_backlog=20, fair_rounds=3)
SMOKE = Plan(seconds=1, rounds=1, running_jobs=5, poll_rate=100,
             latency_samples=5, small_rows=1_000, large_rows=2_000,
             streams=100, streamed_jobs=10, changes=10, stream_rounds=1,
             stream_poll_rate=100, eta_step_s=0.05, eta_warm_jobs=4, eta_backlog=6,
             eta_one_by_one=2, fair_step_s=0.05, fair_backlog=6, fair_rounds=1)
CHANGES_PER_S = 25  # progress updates fanned out to the streams, evenly paced
WORKER_SLOTS = 4  # of the ETA and fairness benchmarks' worker


class Bench:
    def __init__(self, plan: Plan, workdir: Path, conninfo: str) -> None:
        self.plan = plan
        self.workdir = workdir
        self.conninfo = conninfo
        self.db = psycopg.connect(conninfo, autocommit=True)
        self.figures: list[Figure] = []
        self.env = tools.environment(
            DATABASE_URL=conninfo,
            JWT_SECRET_KEY="bench-secret-key-long-enough-for-hs256-signing",
            APP_ENV="production", LLM_PROVIDER="offline",
            MAX_ACTIVE_JOBS_PER_SESSION="1000000000", JOB_CREATE_RATE_PER_ADDRESS="0",
            WORKER_SHUTDOWN_GRACE_S="1", REAPER_INTERVAL_S="10")
        self.gunicorn_pid = 0
        self.h2h_plan = head_to_head.SMOKE if plan is SMOKE else head_to_head.FULL
        self.jobs_per_s = 0.0  # ours in the head-to-head, for the R-pg ceiling

    # --- plumbing ---------------------------------------------------------------------

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    @contextmanager
    def services(self, processes: int) -> Iterator[None]:
        """Ours and the references, under webapp/gunicorn_conf.py with `processes` workers."""
        gunicorn = [str(tools.BIN / "gunicorn"), "-c", "webapp/gunicorn_conf.py"]
        env = {**self.env, "WEB_CONCURRENCY": str(processes)}
        with ExitStack() as stack:
            ours = stack.enter_context(tools.process(
                [*gunicorn, "wsgi:app"], {**env, "PORT": str(OURS_PORT)},
                ready_url=f"{OURS}/readyz", log=self.log("ours")))
            stack.enter_context(tools.process(
                [*gunicorn, "bench.reference_app:app"],
                {**env, "PORT": str(REFERENCE_PORT)}, ready_url=f"{REFERENCE}/items/1",
                log=self.log("reference")))
            self.gunicorn_pid = ours.pid
            yield

    @contextmanager
    def our_worker(self, concurrency: int = WORKER_CONCURRENCY, step_seconds: float = 0,
                   jitter: float = 0) -> Iterator[int]:
        env = {**self.env, "BENCH_STEP_SECONDS": str(step_seconds),
               "BENCH_STEP_JITTER": str(jitter)}
        with tools.process([PYTHON, "-m", "bench.bench_worker", "--concurrency",
                            str(concurrency), "--queue", store.QUEUE], env,
                           log=self.log("worker")) as child:
            yield child.pid

    @contextmanager
    def ready_worker(self, step_seconds: float, jitter: float = 0.5) -> Iterator[int]:
        """Our worker with WORKER_SLOTS slots whose steps sleep, registered and listening."""
        known = self.count("SELECT max(id) FROM procrastinate_workers")
        with self.our_worker(WORKER_SLOTS, step_seconds, jitter) as pid:
            self.wait(lambda: self.count("SELECT max(id) FROM procrastinate_workers") > known,
                      "the worker to register")
            time.sleep(0.5)  # its LISTEN is set up just after it registers
            yield pid

    @contextmanager
    def ours_alone(self, name: str) -> Iterator[tuple[str, int]]:
        """Another instance of ours, one gunicorn process as shipped (gevent): its URL and
        the pid of its one worker process."""
        port = tools.free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**self.env, "WEB_CONCURRENCY": "1", "PORT": str(port)}
        with tools.process([str(tools.BIN / "gunicorn"), "-c", "webapp/gunicorn_conf.py",
                            "wsgi:app"], env, ready_url=f"{url}/readyz",
                           log=self.log(name)) as master:
            yield url, tools.children(master.pid)[0]

    def reset(self) -> None:
        """Empty the job tables between figures (the references' rows stay), and flush
        what the last figure wrote: a checkpoint that PostgreSQL would otherwise spread
        over the next minutes would slow whichever side it overlaps."""
        self.db.execute("TRUNCATE jobs, job_steps, images, idempotency_keys, rate_limits, "
                        "llm_usage_daily, procrastinate_events, procrastinate_periodic_defers, "
                        "procrastinate_jobs CASCADE")
        self.db.execute("CHECKPOINT")

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.02)

    def count(self, query: str, *params: Any) -> int:
        row = self.db.execute(query, params).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def alternate(self, ours: Callable[[], float], reference: Callable[[], float],
                  rounds: int | None = None) -> Rounds:
        """One pair a round: A then B, then B then A, and so on."""
        mine: list[float] = []
        theirs: list[float] = []
        for round_number in range(rounds or self.plan.rounds):
            pair = [(ours, mine), (reference, theirs)]
            for measure, into in pair if round_number % 2 == 0 else reversed(pair):
                into.append(measure())
        return Rounds(tuple(mine), tuple(theirs))

    def add_paired(self, name: str, rounds: Rounds, unit: str, target: str, *,
                   note: str, digits: int = 0, target_on_ours: bool = False) -> None:
        def shown(value: float) -> float:
            return round(value, digits) if digits else round(value)

        self.add(Figure(name, shown(rounds.ours_median), shown(rounds.reference_median), unit,
                        target, note=note, target_on_ours=target_on_ours,
                        round_values=tuple(zip(rounds.ours, rounds.reference, strict=True))))

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        ratio = f"{figure.ratio:.2f}" if figure.ratio is not None else "-"
        print(f"{figure.name}: ours {figure.ours}, reference {figure.reference}, "
              f"ratio {ratio}, target {figure.target}, passed {figure.passed}", flush=True)

    # --- fixtures ---------------------------------------------------------------------

    def polled_job(self) -> tuple[str, str, int]:
        """A succeeded session-owned job with a 10 KB result: (id, ETag, document bytes)."""
        job_id = insert_succeeded_job(self.db, SESSION)
        answer = requests.get(f"{OURS}/api/v1/jobs/{job_id}/status",
                              headers={"x-session-id": SESSION}, timeout=10)
        answer.raise_for_status()
        return str(job_id), answer.headers["ETag"], len(answer.content)

    def reference_item(self, size: int) -> int:
        """A reference row whose JSON answer is `size` bytes, as our status document."""
        self.db.execute(REFERENCE_TABLE)
        payload = {"success": True, "notes": ""}
        padding = size - len(json.dumps(payload, separators=(",", ":")))
        payload["notes"] = "x" * max(0, padding)
        row = self.db.execute("INSERT INTO bench_items (payload) VALUES (%s) RETURNING id",
                              (json.dumps(payload),)).fetchone()
        assert row is not None
        return int(row[0])

    @contextmanager
    def ours_on_a_table_of(self, rows: int) -> Iterator[SizedTable]:
        """Ours (one gunicorn process) on a database of its own whose job table holds
        `rows` finished jobs, and a polled job among them."""
        name = f"bench_{rows}"
        conninfo = make_conninfo(self.conninfo, dbname=name)
        port = tools.free_port()
        url = f"http://127.0.0.1:{port}"
        try:
            self.db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            apply_migrations(conninfo)
            with psycopg.connect(conninfo, autocommit=True) as db:
                _seed_finished_jobs(db, rows)
                db.execute("CHECKPOINT")  # not spread over the rounds that follow
                job_id = insert_succeeded_job(db, SESSION)
                env = {**self.env, "DATABASE_URL": conninfo, "PORT": str(port),
                       "WEB_CONCURRENCY": "1"}
                # jobs-web, as deployed (it patches for gevent before psycopg is imported)
                with tools.process([str(tools.BIN / "jobs-web")], env, ready_url=f"{url}/readyz",
                                   log=self.log(name)):
                    yield SizedTable(url, db, str(job_id))
        finally:
            self.db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))

    # --- the figures ------------------------------------------------------------------

    def create_throughput(self) -> None:
        plan, work = self.plan, self.workdir
        rounds = self.alternate(
            lambda: tools.wrk(f"{OURS}/api/v1/jobs/website-analysis", seconds=plan.seconds,
                              connections=16, method="POST", body=CREATE_BODY, fresh_session=True,
                              headers={"Content-Type": "application/json"},
                              workdir=work).requests_per_s,
            lambda: tools.wrk(f"{REFERENCE}/items", seconds=plan.seconds, connections=16,
                              method="POST", workdir=work).requests_per_s)
        self.add_paired("create-job requests/s at 16 connections ÷ R-insert", rounds, "req/s",
                        "≥ 0.6", note=ONE_PROCESS)
        self.reset()

    def poll_throughput(self) -> None:
        plan, work = self.plan, self.workdir
        job_id, etag, size = self.polled_job()
        item = self.reference_item(size)
        status_url = f"{OURS}/api/v1/jobs/{job_id}/status"

        def reference() -> float:
            return tools.wrk(f"{REFERENCE}/items/{item}", seconds=plan.seconds,
                             connections=16, workdir=work).requests_per_s

        def ours(headers: dict[str, str]) -> Callable[[], float]:
            return lambda: tools.wrk(status_url, seconds=plan.seconds, connections=16,
                                     headers={"x-session-id": SESSION, **headers},
                                     workdir=work).requests_per_s

        self.add_paired(f"status-poll requests/s ({size // 1024} KB document) ÷ R-read",
                        self.alternate(ours({}), reference), "req/s", "≥ 0.8",
                        note=ONE_PROCESS)
        self.add_paired("status poll answered 304 ÷ R-read",
                        self.alternate(ours({"If-None-Match": etag}), reference), "req/s",
                        "≥ 1.0", note=ONE_PROCESS)
        self.reset()

    def poll_latency_under_load(self) -> None:
        plan = self.plan
        with self.our_worker(concurrency=plan.running_jobs, step_seconds=3600) as worker_pid:
            job_ids = [self.create_via_api() for _ in range(plan.running_jobs)]
            self.wait(lambda: self.count("SELECT count(*) FROM jobs WHERE status = 'running'")
                      == plan.running_jobs, f"{plan.running_jobs} running jobs")
            status_url = f"{OURS}/api/v1/jobs/{job_ids[0]}/status"
            rates: list[float] = []

            def ours() -> float:
                load = self.paced_load(status_url, {"x-session-id": SESSION})
                rates.append(load.requests_per_s)
                return load.p99_ms

            rounds = self.alternate(
                ours, lambda: self.paced_load(f"{REFERENCE}/items/1", {}).p99_ms)
            self.add_paired(f"p99 of status polls at {plan.poll_rate}/s with "
                            f"{plan.running_jobs} jobs running ÷ R-read's p99 under the same "
                            "load", rounds, "ms", "≤ 1.3", digits=1,
                            note=f"{statistics.median(rates):.0f} polls/s from {POLLERS} "
                                 "pollers out of step; web 2 processes a side")
            gunicorn_worker = tools.children(self.gunicorn_pid)[0]
            self.add(Figure("resident memory of one gunicorn worker process",
                            round(tools.rss_mb(gunicorn_worker)), None, "MiB", "reported",
                            note="after the load above"))
            self.add(Figure("resident memory of one worker process",
                            round(tools.rss_mb(worker_pid)), None, "MiB", "reported",
                            note=f"{plan.running_jobs} jobs running"))
        self.reset()

    def paced_load(self, url: str, headers: dict[str, str]) -> tools.Load:
        return tools.hey(url, seconds=self.plan.seconds * 2, rate=self.plan.poll_rate,
                         connections=POLLERS, groups=POLLER_GROUPS, headers=headers)

    def create_via_api(self) -> str:
        answer = requests.post(f"{OURS}/api/v1/jobs/website-analysis",
                               json={"url": "https://example.com/"},
                               headers={"x-session-id": SESSION}, timeout=10)
        answer.raise_for_status()
        return str(answer.json()["jobId"])

    def finished(self, job_id: str) -> Callable[[], bool]:
        return lambda: self.count("SELECT count(*) FROM jobs WHERE id = %s AND "
                                  "status = 'succeeded'", job_id) == 1

    def pickup_latency(self) -> None:
        samples = []
        with self.our_worker():
            self.wait(lambda: self.count("SELECT count(*) FROM procrastinate_workers") > 0,
                      "the worker to register")
            time.sleep(0.5)  # its LISTEN is set up just after it registers
            with requests.Session() as http:
                for _ in range(self.plan.latency_samples):
                    answer = http.post(f"{OURS}/api/v1/jobs/website-analysis",
                                       json={"url": "https://example.com/"},
                                       headers={"x-session-id": SESSION}, timeout=10)
                    job_id = answer.json()["jobId"]
                    self.wait(self.finished(job_id), "the job to finish")
                    row = self.db.execute(
                        "SELECT extract(epoch FROM run_started_at - created_at) * 1000 "
                        "FROM jobs WHERE id = %s", (job_id,)).fetchone()
                    assert row is not None
                    samples.append(float(row[0]))
        samples.sort()
        p50 = statistics.median(samples)
        p99_ms = p99(samples)
        note = f"{len(samples)} jobs, one at a time, created_at → run_started_at"
        self.add(Figure("idle worker: create → running p50", round(p50, 1), None, "ms",
                        "≤ 20", note=note))
        self.add(Figure("idle worker: create → running p99", round(p99_ms, 1), None, "ms",
                        "≤ 100", note=note))
        self.reset()

    def versus_peers(self) -> None:
        """Ours against R-celery and R-bullmq (bench/head_to_head.py)."""
        head_to_head.run(self, self.ours_side(), self.h2h_plan)
        for figure in self.figures:
            if figure.name.startswith("throughput ÷ R-celery:") and figure.ours:
                self.jobs_per_s = figure.ours
        self.reset()

    def queue_added_latency(self) -> None:
        head_to_head.queue_added_latency(self, self.ours_side(), self.h2h_plan,
                                         self.plan.latency_samples)
        self.reset()

    def ours_side(self) -> head_to_head.Ours:
        postmaster = int((self.workdir / "pgdata" / "postmaster.pid").read_text().split()[0])
        return head_to_head.Ours(self.db, postmaster)

    def postgres_ceiling(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS bench_pg_jobs (id bigint GENERATED "
                        "ALWAYS AS IDENTITY PRIMARY KEY, status text NOT NULL, payload jsonb "
                        "NOT NULL, started_at timestamptz, finished_at timestamptz)")
        self.db.execute("CREATE INDEX IF NOT EXISTS bench_pg_jobs_queued ON bench_pg_jobs (id) "
                        "WHERE status = 'queued'")
        runs = [tools.pgbench(self.conninfo, BENCH_DIR / "pg_lifecycle.sql",
                              seconds=self.plan.seconds, clients=WORKER_CONCURRENCY)
                for _ in range(self.plan.rounds)]
        ceiling = statistics.median(runs)
        self.add(Figure("throughput (head-to-head) ÷ R-pg (pgbench: insert, claim with SKIP "
                        "LOCKED, finish)", round(self.jobs_per_s, 1), round(ceiling),
                        "jobs/s", "reported", note="the ceiling of any PostgreSQL queue here"))
        self.db.execute("DROP TABLE bench_pg_jobs")

    def table_size(self) -> None:
        """The same service on a small and on a large job table at once (two databases),
        measured in alternating rounds like every other figure."""
        plan = self.plan
        with ExitStack() as stack:
            small = stack.enter_context(self.ours_on_a_table_of(plan.small_rows))
            large = stack.enter_context(self.ours_on_a_table_of(plan.large_rows))
            polls = self.alternate(lambda: self.poll_p50(large), lambda: self.poll_p50(small))
            creates = self.alternate(lambda: self.create_p50(large),
                                     lambda: self.create_p50(small))
        rows = f"{plan.large_rows:,} rows vs {plan.small_rows:,}"
        note = f"wrk, 4 connections; {ONE_PROCESS}; one database each"
        self.add_paired(f"status-poll p50, {rows}", polls, "ms", "≤ 1.2", note=note, digits=2)
        self.add_paired(f"create p50, {rows}", creates, "ms", "≤ 1.2", note=note, digits=2)

    def poll_p50(self, table: SizedTable) -> float:
        return tools.wrk(f"{table.url}/api/v1/jobs/{table.job_id}/status",
                         seconds=self.plan.seconds, connections=4,
                         headers={"x-session-id": SESSION}, workdir=self.workdir).p50_ms

    def create_p50(self, table: SizedTable) -> float:
        p50 = tools.wrk(f"{table.url}/api/v1/jobs/website-analysis", seconds=self.plan.seconds,
                        connections=4, method="POST", body=CREATE_BODY,
                        fresh_session=True, headers={"Content-Type": "application/json"},
                        workdir=self.workdir).p50_ms
        # The next round starts from the same table (no worker runs these).
        table.db.execute("DELETE FROM jobs WHERE status = 'queued'")
        table.db.execute("DELETE FROM procrastinate_jobs")
        return p50

    def hello_vs_304(self) -> None:
        """A 304 answered from memory against the least a request costs here."""
        job_id, etag, _ = self.polled_job()
        status_url = f"{OURS}/api/v1/jobs/{job_id}/status"

        def requests_per_s(url: str, headers: dict[str, str] | None = None) -> Callable[[], float]:
            return lambda: tools.wrk(url, seconds=self.plan.seconds, connections=16,
                                     headers=headers, workdir=self.workdir).requests_per_s

        polls = requests_per_s(status_url, {"x-session-id": SESSION, "If-None-Match": etag})
        before = _from_memory(OURS)
        rounds = self.alternate(polls, requests_per_s(f"{REFERENCE}/hello"))
        if _from_memory(OURS) <= before:
            raise RuntimeError("the 304s were not answered from memory")
        self.add_paired("status poll answered 304 from memory ÷ a bare Flask hello route",
                        rounds, "req/s", "≥ 0.8",
                        note=f"{ONE_PROCESS}; the same ETag each time")
        # The floor of our own app: /healthz passes the same hooks (request id, latency
        # histogram, request line, CORS) and reads nothing; what is left is the poll's own
        # cost (identity, the memory lookup, the ETag).
        floor = self.alternate(polls, requests_per_s(f"{OURS}/healthz"))
        self.add_paired("status poll answered 304 from memory ÷ our own /healthz", floor,
                        "req/s", "reported",
                        note=f"{ONE_PROCESS}; the same process; /healthz reads nothing")
        self.reset()

    # --- live status: idle streams, fan-out, polls beside them ---------------------------

    def live_streams(self) -> None:
        """One gunicorn process (gevent, as shipped) holding `streams` idle event streams of
        queued jobs (no worker runs, so they get keep-alives only), beside an identical
        process holding none: the memory a stream costs, how fast a change reaches every
        subscriber, and the polls of the one against the other."""
        plan = self.plan
        job_ids = [str(job_id) for job_id in self.queued_jobs(plan.streamed_jobs)]
        polled = str(insert_succeeded_job(self.db, SESSION))
        with self.ours_alone("streamed") as (streamed, pid), \
                self.ours_alone("quiet") as (quiet, _):
            answer = requests.get(f"{streamed}/api/v1/jobs/{polled}/status",
                                  headers={"x-session-id": SESSION}, timeout=10)
            answer.raise_for_status()
            for url in (streamed, quiet):  # both warm, their change feeds listening
                tools.wrk(f"{url}/api/v1/jobs/{polled}/status", seconds=1, connections=16,
                          headers={"x-session-id": SESSION}, workdir=self.workdir)
            before = tools.rss_mb(pid)
            client = StreamClient(streamed, SESSION, plan.streams, job_ids)
            try:
                grown = tools.rss_mb(pid) - before
                self.add(Figure(
                    f"resident memory per idle event stream ({plan.streams:,} on one "
                    f"gunicorn process)", round(grown * 1024 / plan.streams, 1), None, "KiB",
                    "reported", note=f"RSS {before:.0f} → {before + grown:.0f} MiB; "
                    f"{plan.streamed_jobs} queued jobs, no worker: keep-alives only"))
                self.fan_out(client, job_ids)
                self.polls_beside_streams(streamed, quiet, polled, answer.headers["ETag"])
            finally:
                client.close()
        self.reset()

    def queued_jobs(self, total: int) -> list[uuid.UUID]:
        """`total` queued jobs of SESSION's, dispatched (no worker runs them here)."""
        owner = models.Owner(None, SESSION)
        limits = fair_use.create_limits(
            fair_use.FairUse(max_active_per_session=total, creates_per_address_per_minute=0),
            owner, "bench")
        job_ids = [uuid.uuid4() for _ in range(total)]
        with self.db.transaction():
            for job_id in job_ids:
                store.create_job(self.db, job_id, "website-analysis", owner,
                                 {"url": "https://example.com/"}, limits)
        return job_ids

    def fan_out(self, client: StreamClient, job_ids: list[str]) -> None:
        """`changes` progress updates, one job each, evenly paced; for every subscriber of
        the changed job, commit (just after the UPDATE returns) → the event's last byte at
        the client, on the host's one monotonic clock."""
        plan = self.plan
        subscribers = Counter(job_ids[i % len(job_ids)] for i in range(plan.streams))
        client.events()  # whatever came before (the estimates' ticks) is not a change
        commits: dict[tuple[str, int], float] = {}
        started = time.monotonic()
        for k in range(plan.changes):
            job_id, progress = job_ids[k % len(job_ids)], 1 + k // len(job_ids)
            time.sleep(max(0.0, started + k / CHANGES_PER_S - time.monotonic()))
            self.db.execute("UPDATE jobs SET progress = %s WHERE id = %s", (progress, job_id))
            commits[(job_id, progress)] = time.monotonic()
        expected = sum(subscribers[job_id] for job_id, _ in commits)
        arrivals: dict[tuple[int, str, int], float] = {}

        def all_arrived() -> bool:
            for stream, job_id, progress, at in client.events()["events"]:
                if (job_id, progress) in commits:
                    arrivals.setdefault((stream, job_id, progress), at)
            return len(arrivals) == expected

        self.wait(all_arrived, f"{expected} events", timeout=30)
        latencies = sorted((at - commits[(job_id, progress)]) * 1000
                           for (_, job_id, progress), at in arrivals.items())
        note = (f"{plan.changes} progress UPDATEs at {CHANGES_PER_S}/s, each to the "
                f"~{plan.streams // len(job_ids)} streams of its job among {plan.streams:,} "
                f"open; {len(latencies):,} events, commit → arrival at the client")
        self.add(Figure("live status fan-out: commit → event p50", round(latencies[
            len(latencies) // 2], 1), None, "ms", "reported", note=note))
        self.add(Figure("live status fan-out: commit → event p99", round(p99(latencies), 1),
                        None, "ms", "≤ 100", note=note))

    def polls_beside_streams(self, streamed: str, quiet: str, job_id: str, etag: str) -> None:
        """The poll figures on the process holding the streams ÷ on the one holding none,
        alternating (both live on the same host throughout)."""
        plan = self.plan
        poll = {"x-session-id": SESSION}

        def rate(url: str, headers: dict[str, str]) -> Callable[[], float]:
            # A poll held up for seconds by the process holding 5,000 streams (a full
            # garbage collection on a loaded host) is slow, not failed: it lowers the rate.
            return lambda: tools.wrk(f"{url}/api/v1/jobs/{job_id}/status",
                                     seconds=plan.seconds, connections=16,
                                     headers={**poll, **headers}, timeout_s=10,
                                     workdir=self.workdir).requests_per_s

        def paced_p99(url: str) -> Callable[[], float]:
            return lambda: tools.hey(f"{url}/api/v1/jobs/{job_id}/status",
                                     seconds=plan.seconds, rate=plan.stream_poll_rate,
                                     connections=POLLERS, groups=POLLER_GROUPS,
                                     headers=poll).p99_ms

        beside = f"beside {plan.streams:,} open streams ÷ without"
        note = ("one gunicorn process holding the streams vs an identical one holding none, "
                f"alternating; {plan.stream_rounds} rounds")
        rounds = plan.stream_rounds
        self.add_paired(f"status-poll requests/s (10 KB document) {beside}",
                        self.alternate(rate(streamed, {}), rate(quiet, {}), rounds), "req/s",
                        "≥ 0.9", note=f"{note}; wrk, 16 connections")
        self.add_paired(f"status poll answered 304 {beside}",
                        self.alternate(rate(streamed, {"If-None-Match": etag}),
                                       rate(quiet, {"If-None-Match": etag}), rounds),
                        "req/s", "≥ 0.9", note=f"{note}; wrk, 16 connections")
        self.add_paired(f"p99 of status polls at {plan.stream_poll_rate}/s {beside}",
                        self.alternate(paced_p99(streamed), paced_p99(quiet), rounds), "ms",
                        "≤ 1.1",
                        note=f"{note}; {POLLERS} pollers out of step", digits=1)

    # --- the estimate and fair turns ---------------------------------------------------

    def eta_accuracy(self) -> None:
        """estimatedTimeRemaining against the time that really remained, for jobs whose
        steps sleep eta_step_s +/- half of it, on a worker of WORKER_SLOTS slots whose
        history was warmed first."""
        plan = self.plan
        with self.ready_worker(plan.eta_step_s), requests.Session() as http:
            warm = [self.create_via_api() for _ in range(plan.eta_warm_jobs)]
            self.wait(lambda: self.count("SELECT count(*) FROM jobs WHERE id = ANY(%s) AND "
                                         "status = 'succeeded'", warm) == len(warm),
                      "the warm-up jobs")
            backlog = self.sampled_jobs(http, plan.eta_backlog)
            one_by_one = [job for _ in range(plan.eta_one_by_one)
                          for job in self.sampled_jobs(http, 1)]
        job_s = 4 * plan.eta_step_s
        for case, sampled in ((f"{plan.eta_backlog} jobs created at once", backlog),
                              ("jobs created one at a time, idle worker", one_by_one)):
            finished = self.finish_times([job.job_id for job in sampled])
            for moment in ("at creation", "half-way"):
                errors = [_eta_error(job, finished[job.job_id], moment) for job in sampled]
                self.add(Figure(
                    f"estimate's error {moment}, {case}", round(statistics.median(errors), 3),
                    None, "of the time left", "≤ 0.25",
                    note=f"median |estimate - remaining| ÷ remaining over {len(errors)} jobs "
                         f"of 4 steps of {plan.eta_step_s:g} s ± 50 % (~{job_s:g} s); "
                         f"{WORKER_SLOTS} slots, {plan.eta_warm_jobs} jobs of history"))
        self.reset()

    def sampled_jobs(self, http: requests.Session, total: int) -> list[SampledJob]:
        """`total` jobs created back to back, each sampled just after its creation, then
        every ETA_SAMPLE_S until all have finished."""
        jobs = []
        for _ in range(total):
            answer = http.post(f"{OURS}/api/v1/jobs/website-analysis",
                               json={"url": "https://example.com/"},
                               headers={"x-session-id": SESSION}, timeout=10)
            answer.raise_for_status()
            job = SampledJob(answer.json()["jobId"], time.time())
            job.sample(http)
            jobs.append(job)
        running = list(jobs)
        while running:
            time.sleep(ETA_SAMPLE_S)
            running = [job for job in running if job.sample(http)]
        return jobs

    def finish_times(self, job_ids: list[str]) -> dict[str, float]:
        rows = self.db.execute("SELECT id::text, extract(epoch FROM finished_at)::float8 "
                               "FROM jobs WHERE id = ANY(%s::uuid[]) AND status = 'succeeded'",
                               (job_ids,)).fetchall()
        if len(rows) != len(job_ids):
            raise RuntimeError("some sampled jobs did not succeed")
        return {job_id: at for job_id, at in rows}

    def fairness(self) -> None:
        plan = self.plan
        with self.ready_worker(plan.fair_step_s):
            rounds = self.alternate(lambda: self.newcomer_wait(fair=True),
                                    lambda: self.newcomer_wait(fair=False), plan.fair_rounds)
        self.add_paired(
            f"a newcomer's wait behind another owner's backlog of {plan.fair_backlog}, fair "
            "turns (reference: FIFO)", rounds, "job durations", "≤ 1", digits=2,
            target_on_ours=True,
            note=f"{WORKER_SLOTS} slots; created once all slots run the backlog's jobs; "
                 f"run_started_at - created_at ÷ the backlog's mean run time; FIFO should "
                 f"be about backlog ÷ slots = {plan.fair_backlog / WORKER_SLOTS:g}")
        self.reset()

    def newcomer_wait(self, fair: bool) -> float:
        """One owner's backlog fills every slot and the queue, then another owner's one
        job: its wait for a slot in the backlog's job durations. FAIR_DISPATCH is applied
        at dispatch (the create); the worker's own setting only prices re-dispatches."""
        plan = self.plan
        policy = fair_use.FairUse(max_active_per_session=plan.fair_backlog,
                                  creates_per_address_per_minute=0, fair_dispatch=fair)
        backlog_owner = models.Owner(None, f"bench_backlog_{uuid.uuid4().hex}")
        newcomer_owner = models.Owner(None, f"bench_newcomer_{uuid.uuid4().hex}")
        with self.db.transaction():
            for _ in range(plan.fair_backlog):
                store.create_job(self.db, uuid.uuid4(), "website-analysis", backlog_owner,
                                 {"url": "https://example.com/"},
                                 fair_use.create_limits(policy, backlog_owner, "bench"))
        self.wait(lambda: self.count("SELECT count(*) FROM jobs WHERE status = 'running'")
                  == WORKER_SLOTS, "every slot busy")
        newcomer = uuid.uuid4()
        store.create_job(self.db, newcomer, "website-analysis", newcomer_owner,
                         {"url": "https://example.com/"},
                         fair_use.create_limits(policy, newcomer_owner, "bench"))
        self.wait(lambda: self.count("SELECT count(*) FROM jobs WHERE status IN "
                                     "('queued', 'running')") == 0, "the backlog", timeout=300)
        row = self.db.execute(
            "SELECT extract(epoch FROM j.run_started_at - j.created_at)::float8, "
            "(SELECT avg(extract(epoch FROM finished_at - run_started_at))::float8 FROM jobs "
            " WHERE owner_session_id = %s AND status = 'succeeded') FROM jobs j WHERE id = %s",
            (backlog_owner.session_id, newcomer)).fetchone()
        assert row is not None and row[1] is not None
        return float(row[0]) / float(row[1])

    def run(self, only: set[str]) -> None:
        # Request rates and latencies per gunicorn process: with two, the kernel's accept
        # races split wrk's 16 keep-alive connections unevenly, differently each run (the
        # ratios came out bimodal, 0.4 or 0.8). The fixed-rate latency and the workers'
        # figures run with webapp/gunicorn_conf.py's default of two.
        # The live-status figures start their own pair of one-process instances; first,
        # as the longest setup (if it fails, it fails early).
        groups: list[tuple[int, dict[str, Callable[[], None]]]] = [
            (0, {"streams": self.live_streams, "h2h": self.versus_peers,
                 "added": self.queue_added_latency}),
            (1, {"create": self.create_throughput, "poll": self.poll_throughput,
                 "hello": self.hello_vs_304, "size": self.table_size}),
            (2, {"latency": self.poll_latency_under_load, "pickup": self.pickup_latency,
                 "ceiling": self.postgres_ceiling, "eta": self.eta_accuracy,
                 "fair": self.fairness})]
        for processes, benchmarks in groups:
            chosen = [(name, run) for name, run in benchmarks.items()
                      if not only or name in only]
            if chosen:
                with self.services(processes) if processes else nullcontext():
                    for name, benchmark in chosen:
                        started = time.monotonic()
                        benchmark()
                        print(f"[{name}: {time.monotonic() - started:.0f} s]", flush=True)


ETA_SAMPLE_S = 0.2  # between two passes of the ETA benchmark's status polls


class SampledJob:
    """A job's estimates as polled: (the poll's midpoint, estimatedTimeRemaining)."""

    def __init__(self, job_id: str, created: float) -> None:
        self.job_id = job_id
        self.created = created  # time.time() just after the create answered
        self.samples: list[tuple[float, int]] = []

    def sample(self, http: requests.Session) -> bool:
        """One poll; False once the job has finished."""
        sent = time.time()
        answer = http.get(f"{OURS}/api/v1/jobs/{self.job_id}/status",
                          headers={"x-session-id": SESSION}, timeout=10)
        answer.raise_for_status()
        document = answer.json()
        if document["estimatedTimeRemaining"] is None:
            return False
        self.samples.append(((sent + time.time()) / 2, document["estimatedTimeRemaining"]))
        return True


def _eta_error(job: SampledJob, finished: float, moment: str) -> float:
    """|estimate - what really remained| ÷ what really remained, for the sample taken at
    creation or the one nearest the midpoint of the job's life."""
    if moment == "at creation":
        at, estimate = job.samples[0]
    else:
        midpoint = (job.created + finished) / 2
        at, estimate = min(job.samples, key=lambda sample: abs(sample[0] - midpoint))
    remaining = finished - at
    return abs(estimate - remaining) / remaining


def _from_memory(url: str) -> float:
    """status_answers_total{source="memory"} of the service at `url` (all its processes)."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    found = re.search(r'^status_answers_total\{source="memory"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


@dataclass(frozen=True)
class SizedTable:
    url: str  # ours, on this table's database
    db: psycopg.Connection[Any]
    job_id: str  # a succeeded session-owned job with a 10 KB result


def _seed_finished_jobs(db: psycopg.Connection[Any], total: int) -> None:
    """`total` finished jobs, spread over 30 days, many owners."""
    db.execute(
        "INSERT INTO jobs (id, type, owner_session_id, input, status, progress, result, "
        "created_at, updated_at, run_started_at, finished_at) "
        "SELECT gen_random_uuid(), 'website-analysis', 'sess_seed_' || (i %% 20000), "
        "'{\"url\": \"https://example.com/\"}', 'succeeded', 100, '{\"success\": true}', "
        "t, t, t, t FROM generate_series(1, %s) i, "
        "LATERAL (SELECT now() - (i %% 2592000) * interval '1 second' AS t) x",
        (total,))
    db.execute("VACUUM (ANALYZE) jobs")


def write_results(figures: list[Figure], out: Path, seconds: float, smoke: bool) -> None:
    rows = [{**asdict(f), "round_ratios": f.round_ratios,
             "ratio": None if f.ratio is None else round(f.ratio, 3), "passed": f.passed}
            for f in figures]
    out.with_suffix(".json").write_text(json.dumps(
        {"smoke": smoke, "seconds": round(seconds), "figures": rows}, indent=2) + "\n")
    lines = ["# Benchmarks" + (" (smoke run: the numbers mean nothing)" if smoke else ""), "",
             f"`make bench` on this machine, {round(seconds)} s. Each ratio is the median "
             "of the rounds' ratios, ours ÷ the reference measured right before or after it "
             "(alternating); ours and reference are the medians of their rounds. Targets "
             "without a reference apply to ours.", "",
             "| figure | ours | reference | ratio | target | pass | rounds | note |",
             "|---|---|---|---|---|---|---|---|"]
    for f in figures:
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}"
        passed = {True: "pass", False: "FAIL", None: ""}[f.passed]
        reference = "" if f.reference is None else f"{f.reference} {f.unit}"
        rounds = " ".join(f"{r:.2f}" for r in f.round_ratios)
        lines.append(f"| {f.name} | {f.ours} {f.unit} | {reference} | {ratio} | {f.target} "
                     f"| {passed} | {rounds} | {f.note} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description="make bench")
    parser.add_argument("--smoke", action="store_true", help="each benchmark for ~1 s")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--only", default="", help="comma-separated: create, poll, hello, "
                        "size, latency, pickup, ceiling, eta, fair, streams, h2h, added "
                        "(default: all)")
    args = parser.parse_args()
    missing = tools.missing_tools()
    if missing:
        print(f"missing {', '.join(missing)}: run `make deps`", file=sys.stderr)
        return 2
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jobs-bench-") as workdir:
        server = start_embedded(Path(workdir) / "pgdata")
        admin = uri_for(server)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("bench")))
        conninfo = uri_for(server, "bench")
        apply_migrations(conninfo)
        bench = Bench(SMOKE if args.smoke else FULL, Path(workdir), conninfo)
        try:
            bench.reference_item(0)  # the reference app's readiness URL reads row 1
            bench.run({name for name in args.only.split(",") if name})
        finally:
            bench.db.close()
            server.cleanup()
        write_results(bench.figures, args.out, time.monotonic() - started, args.smoke)
    print(f"wrote {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
