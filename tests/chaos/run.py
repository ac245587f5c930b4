"""`python -m tests.chaos [--short]` (`make chaos`, `make chaos-short`): one chaos run.

1. Starts, as separate processes: PostgreSQL (pgserver, in a temporary directory), the
   migrations (`jobs-migrate`), `jobs-web` (gunicorn) and `jobs-worker` processes; the fake
   OpenAI server and the fake website run as threads of this process.
2. Calibrates: one visitor's analysis and post with an instant model, counting the LLM
   calls a clean run of each job type needs.
3. Slows the model down and lets visitors arrive (tests.chaos.load) while the plan's faults
   happen (tests.chaos.plan): worker SIGKILLs and SIGTERMs (each followed by a new worker
   process, as a deploy would start), gunicorn worker SIGKILLs, PostgreSQL restarts and an
   outage. A worker that exits by itself is noted and not replaced: nothing supervises.
4. Lets every job finish (or not, by the drain deadline), reads each job's final status and
   images through the API and the counters from PostgreSQL, and judges (tests.chaos.verdict).

Prints the table and writes it to var/chaos/<plan>.md; logs of every process go to
var/chaos/logs-<plan>/. Exit status: 0 when every row passes, 1 when one fails, 2 when the
run itself could not be carried out (the service did not start, or the overall deadline
passed), 130 on Ctrl-C. Every process is stopped on the way out in all cases.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import psycopg
import requests

from tests.chaos import plan as plans
from tests.chaos.cluster import Cluster, Database, Worker, environment
from tests.chaos.load import ANALYSIS, CONTENT, FINISHED, Job, Load
from tests.chaos.verdict import (
    KILL_RACE_S,
    Facts,
    image_urls,
    incomplete_reason,
    judge,
    passed,
    table,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.website import FakeWebsite
from tests.integration.support import wait_until

PROJECT_DIR = Path(__file__).resolve().parents[2]
OUT_DIR = PROJECT_DIR / "var" / "chaos"
TERM_WAIT_S = 40  # a SIGTERMed worker's grace (10 s) and its way out
LLM_KINDS = ("chat", "images")

# The harness's reads (test code: the service's own SQL lives in sql/).
IN_FLIGHT = """SELECT j.id::text FROM procrastinate_jobs p JOIN jobs j ON j.dispatch_id = p.id
                WHERE p.worker_id = %s AND p.status = 'doing'"""
BUSY_WORKERS = """SELECT p.worker_id, count(*) FROM procrastinate_jobs p
                    JOIN jobs j ON j.dispatch_id = p.id
                   WHERE p.status = 'doing' GROUP BY p.worker_id"""
UNFINISHED = "SELECT id::text FROM jobs WHERE status NOT IN ('succeeded', 'failed')"
JOB_ROWS = "SELECT id::text, type, status, lost_runs FROM jobs"
RECORDED_CALLS = "SELECT coalesce(sum(calls), 0) FROM llm_usage_daily"


class Deadline(Exception):
    """The run overran its plan's overall deadline."""


class Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.started


class Run:
    def __init__(self, plan: plans.Plan, workdir: Path, logs: Path, llm: FakeOpenAI,
                 site: FakeWebsite) -> None:
        self.plan = plan
        self.llm = llm
        self.clock = Clock()
        env = environment(
            JWT_SECRET_KEY=secrets.token_urlsafe(48), LLM_PROVIDER="openai",
            OPENAI_API_KEY="chaos-test-key", OPENAI_BASE_URL=llm.base_url,
            FETCH_ALLOW_PRIVATE_NETWORKS="true", LOG_FORMAT="json",
            # Fair use lifted: many visitors from one address, several jobs per session.
            MAX_ACTIVE_JOBS_PER_SESSION="1000", MAX_ACTIVE_JOBS_PER_USER="1000",
            JOB_CREATE_RATE_PER_ADDRESS="0", REGISTRATIONS_PER_ADDRESS_PER_HOUR="1000000")
        self.db = Database(workdir / "pgdata", remove=workdir)
        self.cluster = Cluster(logs, env, self.db, plan.concurrency, self.clock)
        self.site = site
        self.load: Load | None = None
        self.facts = Facts(plan=plan.name)
        self.clean: dict[str, int] = {}
        self.calibration_jobs: list[Job] = []
        # Workers that died by themselves whose runs in flight are not counted yet (the
        # database was down when the exit was seen).
        self.uncounted_deaths: list[int | None] = []

    # --- the run -------------------------------------------------------------------------

    def execute(self) -> Facts:
        self.start_services()
        self.calibrate()
        self.llm.set_delay("chat", self.plan.chat_delay_s)
        self.llm.set_delay("images", self.plan.image_delay_s)
        load = self.new_load()
        load.start()
        load_started = self.clock()
        for fault in self.plan.faults:
            self.idle_until(load_started + fault.at_s)
            self.inject(fault)
        self.idle_until(load_started + self.plan.load_s)
        load.stop_creating()
        drain_started = self.clock()
        self.idle_until(drain_started + self.plan.drain_s, stop_when=self.drained)
        self.facts.drain_s = self.clock() - drain_started
        load.stop()
        self.watch()
        self.gather(load)
        return self.facts

    def start_services(self) -> None:
        self.db.start()
        self.cluster.migrate()
        self.cluster.start_web(self.plan.web_processes)
        started = [self.cluster.start_worker(slot) for slot in range(self.plan.workers)]
        for worker in started:
            self.cluster.wait_ready(worker)

    def new_load(self) -> Load:
        self.load = Load(self.plan, self.cluster.web_url, self.site.url("/"), self.clock)
        return self.load

    def calibrate(self) -> None:
        """A visitor with an analysis and a post, the model answering at once: the calls
        each job type needs without faults. Its jobs count in the checks like any other."""
        load = self.new_load()
        load.creating.set()
        load.polling.set()
        before = self.answered()
        http = requests.Session()
        analysis = load.create(http, ANALYSIS, {"url": self.site.url("/")},
                               {"x-session-id": f"chaos_calibration_{secrets.token_hex(8)}"})
        assert analysis is not None
        self.wait_finished(load, http, analysis)
        self.clean[ANALYSIS] = self.answered() - before
        load.jobs.clear()
        before = self.answered()
        load.visit(self.plan.content_every)  # analysis, sign-up, post
        content = [job for job in load.jobs if job.type == CONTENT]
        if not content:
            raise RuntimeError(f"calibration: no post was written ({load.answers[-3:]})")
        self.wait_finished(load, http, content[0])
        self.clean[CONTENT] = self.answered() - before - self.clean[ANALYSIS]
        self.calibration_jobs = [analysis, *load.jobs]
        print(f"chaos: LLM calls of a clean run: {self.clean}", flush=True)

    def wait_finished(self, load: Load, http: requests.Session, job: Job) -> None:
        document = load.poll_to_end(http, job)
        reason = incomplete_reason(job.type, document)
        if reason is not None:
            raise RuntimeError(f"calibration: the {job.type} job {job.id} did not succeed "
                               f"without faults ({reason}); see {self.cluster.workdir}")

    def answered(self) -> int:
        """LLM calls answered with success: what a provider bills."""
        return sum(self.llm.answered(kind) for kind in LLM_KINDS)

    def idle_until(self, when: float, stop_when: Callable[[], bool] | None = None) -> None:
        """Watches the processes until `when` (or until stop_when() is true)."""
        while self.clock() < when:
            self.watch()
            if stop_when is not None and stop_when():
                return
            time.sleep(0.5)

    def watch(self) -> None:
        """Notes workers that exited by themselves, and the runs they had in flight: rows
        of a dead worker stay 'doing' until the reaper, at least WORKER_STALLED_AFTER_S
        later, releases them."""
        self.uncounted_deaths += [w.worker_id for w in self.cluster.check_exits()]
        while self.uncounted_deaths:
            try:
                self.count_in_flight(self.uncounted_deaths[0])
            except psycopg.Error:  # PostgreSQL is down: next time
                return
            self.uncounted_deaths.pop(0)

    def count_in_flight(self, worker_id: int | None) -> int:
        """The runs a dead worker had in flight, which the reaper may count as lost."""
        lost = [row[0] for row in self.db.query(IN_FLIGHT, (worker_id,))]
        self.facts.in_flight_at_death.update(lost)
        return len(lost)

    def drained(self) -> bool:
        """Every job finished, or nothing left that could finish one (no worker alive)."""
        assert self.load is not None
        if not self.cluster.live_workers():
            return True
        if not self.load.visitors_done():
            return False
        with contextlib.suppress(Exception):  # PostgreSQL may be gone for good
            return not self.db.query(UNFINISHED)
        return False

    # --- faults --------------------------------------------------------------------------

    def inject(self, fault: plans.Fault) -> None:
        at = self.clock()
        if fault.kind in (plans.KILL_WORKER, plans.TERM_WORKER):
            note = self.stop_worker(fault.kind == plans.KILL_WORKER)
        elif fault.kind == plans.KILL_WEB:
            note = self.kill_web_worker()
        else:
            note = self.stop_postgres(fault.seconds)
        self.facts.faults.append(f"{at:.0f}s {fault.kind} {note}".strip())
        print(f"chaos: {self.facts.faults[-1]}", flush=True)

    def busiest_worker(self) -> Worker | None:
        live = self.cluster.live_workers()
        if not live:
            return None
        busy = dict(self.db.query(BUSY_WORKERS))
        return max(live, key=lambda w: busy.get(w.current_worker_id(), 0))

    def stop_worker(self, kill: bool) -> str:
        worker = self.busiest_worker()
        if worker is None:
            return "skipped: no live worker"
        worker_id = worker.current_worker_id()
        if kill:
            worker.signalled = "SIGKILL"
            self.facts.worker_kills.append(time.monotonic())
            worker.process.kill()
            worker.process.wait(10)
            note = f"({self.count_in_flight(worker_id)} runs in flight)"
        else:
            running = {row[0] for row in self.db.query(IN_FLIGHT, (worker_id,))}
            worker.signalled = "SIGTERM"
            worker.process.terminate()
            killed = ""
            try:
                code = worker.process.wait(TERM_WAIT_S)
            except subprocess.TimeoutExpired:  # a stop that hangs: killed, its runs lost
                self.facts.worker_kills.append(time.monotonic())
                worker.process.kill()
                code = worker.process.wait(10)
                killed = f", SIGKILLed after {TERM_WAIT_S} s with " \
                         f"{self.count_in_flight(worker_id)} runs in flight"
            # Handed back: still to finish (not counted again when lost with a kill above).
            unfinished = set() if killed else \
                running & {row[0] for row in self.db.query(UNFINISHED)}
            self.facts.handed_back += len(unfinished)
            note = (f"({len(running)} runs in flight, {len(unfinished)} handed back, "
                    f"exit code {code}{killed})")
        self.cluster.wait_ready(self.cluster.start_worker(worker.slot))
        return note

    def kill_web_worker(self) -> str:
        pids = self.cluster.web_workers()
        if not pids:
            return "skipped: no gunicorn worker"
        os.kill(pids[0], signal.SIGKILL)
        self.facts.web_kills.append(self.clock())
        wait_until(lambda: pids[0] not in (now := self.cluster.web_workers())
                   and len(now) >= self.plan.web_processes, 60, 0.2,
                   "gunicorn to replace its worker")
        return ""

    def stop_postgres(self, seconds: float) -> str:
        started = self.clock()
        self.db.stop()
        self.idle_until(self.clock() + seconds)
        self.db.start()
        self.facts.outages.append((started, self.clock()))
        return f"{self.clock() - started:.1f}s down"

    # --- the checks ----------------------------------------------------------------------

    def gather(self, load: Load) -> None:
        facts = self.facts
        jobs = {job.id: job for job in self.calibration_jobs + load.jobs}
        facts.jobs_with_201 = len(jobs)
        http = requests.Session()
        for job in jobs.values():
            reason = self.final_check(load, http, job)
            if reason is not None:
                facts.incomplete[job.id] = reason
        rows = self.db.query(JOB_ROWS)
        facts.stuck = sum(1 for row in rows if row[2] not in FINISHED)
        facts.jobs_without_201 = sum(1 for row in rows if row[0] not in jobs)
        facts.lost_runs = {row[0]: row[3] for row in rows if row[3]}
        succeeded = Counter(row[1] for row in rows if row[2] == "succeeded")
        facts.clean_calls = sum(self.clean[kind] * n for kind, n in succeeded.items())
        facts.answered_calls = self.answered()
        facts.delivered_calls = sum(self.llm.delivered(kind) for kind in LLM_KINDS)
        facts.received_calls = sum(self.llm.calls(kind) for kind in LLM_KINDS)
        facts.recorded_calls = int(self.db.query(RECORDED_CALLS)[0][0])
        facts.delivered_just_before_kills = sum(
            self.llm.delivered_between(at - KILL_RACE_S, at) for at in facts.worker_kills)
        facts.unexpected_exits = [f"{e.name} at {e.at_s:.0f}s, code {e.code}"
                                  for e in self.cluster.unexpected_exits]
        facts.answers = load.answers
        facts.visitor_errors = load.errors

    def final_check(self, load: Load, http: requests.Session, job: Job) -> str | None:
        """The job's last status as a frontend reads it, and every image it names."""
        def read_status() -> requests.Response | None:
            answer = load.send(http, "final", "GET", f"/api/v1/jobs/{job.id}/status",
                               headers=job.headers)
            return answer if answer is not None and answer.status_code == 200 else None

        try:
            response = wait_until(read_status, 30, 0.5, f"job {job.id}'s status")
        except AssertionError:
            return "status unreadable"
        document = dict(response.json())
        reason = incomplete_reason(job.type, document)
        if reason is not None:
            return reason
        for url in image_urls(job.type, document):
            image = load.send(http, "image", "GET", url, headers=job.headers)
            if image is None or image.status_code != 200 \
                    or not image.headers.get("Content-Type", "").startswith("image/"):
                return "an image unreadable"
        return None


# --- the command ---------------------------------------------------------------------------


def _raise_deadline(signum: int, frame: FrameType | None) -> None:
    raise Deadline


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--short", action="store_true",
                        help="the few-minute plan (CI); default: the full one")
    args = parser.parse_args(argv)
    plan = plans.SHORT if args.short else plans.FULL
    logs = OUT_DIR / f"logs-{plan.name}"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGALRM, _raise_deadline)
    print(f"chaos: the {plan.name} plan, at most {plan.deadline_s:.0f} s; logs in {logs}",
          flush=True)
    try:
        facts = _run(plan, logs)
    except Deadline:
        print(f"chaos: the run overran its {plan.deadline_s:.0f} s deadline; see {logs}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("chaos: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the harness or the service's start-up: not a verdict
        traceback.print_exc()
        print(f"chaos: the run could not be carried out: {error}; see {logs}",
              file=sys.stderr)
        return 2
    rows = judge(facts)
    text = (f"# Chaos test: the {plan.name} plan\n\n{table(rows)}\n\n"
            f"Overall: {'pass' if passed(rows) else 'FAIL'}\n")
    print(text, flush=True)
    (OUT_DIR / f"{plan.name}.md").write_text(text)
    return 0 if passed(rows) else 1


def _run(plan: plans.Plan, logs: Path) -> Facts:
    signal.alarm(int(plan.deadline_s))
    workdir = Path(tempfile.mkdtemp(prefix="chaos-pg-"))  # removed by the database's guard
    with FakeOpenAI() as llm, FakeWebsite() as site:
        run = Run(plan, workdir, logs, llm, site)
        try:
            return run.execute()
        finally:
            # Stopping must not be cut short: no deadline, no second Ctrl-C meanwhile.
            signal.alarm(0)
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                if run.load is not None:
                    run.load.stop()
                run.cluster.close()
            finally:
                signal.signal(signal.SIGINT, previous)
