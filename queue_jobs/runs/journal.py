"""How a run of a job's pipeline meets the database, for a worker's run and for a
synchronous call alike: the journal of steps and checkpoints, the services the steps are
handed (fetch, images, organizations, posts, LLM usage), and the record of the run's
outcome. Every write is fenced by the run's dispatch id: a superseded run writes nothing,
except the usage of its LLM calls, which were paid for whichever run owns the job now.

How a write meets an unreachable PostgreSQL is the caller's Patience: an in-request run
fails at once (its caller answers 503); a worker's run waits for the database, retrying
with a bounded backoff, until it answers or the run no longer matters (stopped: cancelled,
timed out, superseded, handed back at shutdown). A retried write is fenced like the first,
so waiting never lets a superseded run write. One case is ambiguous: a connection lost
after the server committed a write but before it answered; the retry then finds the step
already saved (refused or repeated harmlessly) or, for an LLM call's usage, counts it twice.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from queue_jobs.db import connections, store
from queue_jobs.db.connections import Conn
from queue_jobs.observability import job_metrics
from queue_jobs.pipeline import fetch
from queue_jobs.pipeline.failures import Cancelled, JobFailure
from queue_jobs.pipeline.llm.base import GeneratedImage
from queue_jobs.pipeline.runner import (
    FinishedStep,
    RunSuperseded,
    StepServices,
    StopSignal,
)
from queue_jobs.runs.resources import RunResources

log = logging.getLogger(__name__)
T = TypeVar("T")

ROW_POLL_INTERVAL_S = 1.0  # our own cancel check, in case procrastinate's abort is missed
_ORGANIZATION_NAMESPACE = uuid.UUID("6f1d7c1e-1c55-4f0a-9d36-2f8a3c4f3b10")
_POST_NAMESPACE = uuid.UUID("0b0e7f5e-5a52-4d8e-9a43-54c1f0d1b7a2")
# One attempt's longest wait for a pooled connection while waiting out an outage (the
# pool's own 30 s would make the run deaf to its stop signal for that long).
ATTEMPT_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Patience:
    """How a unit of database work meets an unreachable database. Without `gives_up`: one
    attempt (in-request runs). With it: retried, connection-level failures only, with
    connections.Backoff, until it succeeds or gives_up() is true; then the last error is
    raised. `wake` (set when gives_up becomes true) cuts a pause short."""

    gives_up: Callable[[], bool] | None = None
    wake: threading.Event = field(default_factory=threading.Event)

    def run(self, pool: ConnectionPool, work: Callable[[Conn], T]) -> T:
        if self.gives_up is None:
            with connections.autocommit(pool) as conn:
                return work(conn)
        backoff, waited = connections.Backoff(), False
        while True:
            try:
                with connections.autocommit(pool, timeout=ATTEMPT_TIMEOUT_S) as conn:
                    result = work(conn)
            except psycopg.Error as error:
                if not connections.is_unreachable(error) or self.gives_up():
                    raise
                if not waited:
                    log.warning("database unreachable (%s): waiting for it",
                                connections.first_line(error) or type(error).__name__)
                    waited = True
                self.wake.wait(backoff.delay())
                if self.gives_up():
                    raise
                continue
            if waited:
                log.info("database reachable again")
            return result


FAIL_FAST = Patience()
# One attempt, with a short wait for a connection: for checks that may simply be skipped.
ONE_SHORT_ATTEMPT = Patience(gives_up=lambda: True)


@dataclass
class DispatchFinish:
    """A worker's run whose success also ends procrastinate's job, in the same statement
    (store.succeed_job): `delete` as the worker's delete_jobs says for a success. `done`
    tells the worker, which then skips its own finish."""

    delete: bool
    done: bool = False


@dataclass(frozen=True)
class DbJournal:
    runtime: RunResources
    job_id: uuid.UUID
    dispatch_id: int
    attempt: int  # the job's attempt when this run claimed it (step records carry it)
    patience: Patience = FAIL_FAST
    finish: DispatchFinish | None = None  # None: the dispatch is ended by someone else

    def _write(self, work: Callable[[Conn], T]) -> T:
        return self.patience.run(self.runtime.pool, work)

    def start_step(self, step: str, progress: int) -> None:
        if not self._write(lambda conn: store.start_step(conn, self.job_id, self.dispatch_id,
                                                         step, progress)):
            raise RunSuperseded()

    def checkpoint(self, step: FinishedStep, progress: int, next_step: str) -> None:
        job_type = self._write(lambda conn: store.checkpoint_steps(
            conn, self.job_id, self.dispatch_id, _step_rows(step), progress, self.attempt,
            next_step))
        self._saved(step, job_type)

    def succeed(self, step: FinishedStep | None, result: dict[str, Any]) -> None:
        finish = self.finish
        finished = self._write(lambda conn: store.succeed_job(
            conn, self.job_id, self.dispatch_id, result, _step_rows(step), self.attempt,
            finish_dispatch=finish is not None, delete_dispatch=bool(finish and finish.delete)))
        if finish is not None and finished is not None:
            finish.done = finished.dispatch_finished
        self._saved(step, finished.type if finished else None)
        assert finished is not None  # _saved raised otherwise
        job_metrics.job_finished(self.job_id, finished, "succeeded")

    def _saved(self, step: FinishedStep | None, job_type: str | None) -> None:
        """After a write of a finished step: job_type None means the run lost the job."""
        if job_type is None:
            # The run lost the job before it could keep the output; the calls were made.
            if step is not None:
                self.step_failed(step.key, step.duration_ms, step.usage, "interrupted",
                                 step.reasks)
            raise RunSuperseded()
        if step is not None:
            job_metrics.step_finished(self.job_id, job_type, step.key, "succeeded",
                                      step.duration_ms, step.usage, step.reasks)

    def step_failed(self, step: str, duration_ms: int, usage: list[dict[str, Any]],
                    outcome: str, reasks: dict[str, int]) -> None:
        try:
            job_type = self._write(lambda conn: store.record_unfinished_step(
                conn, self.job_id, step, outcome, duration_ms, usage, self.attempt,
                sum(reasks.values())))
        except Exception:  # the step's own outcome is what matters; this is bookkeeping
            log.warning("job %s: could not record step %s (%s)", self.job_id, step, outcome,
                        exc_info=True)
            return
        if job_type is not None:
            job_metrics.step_finished(self.job_id, job_type, step, outcome, duration_ms, usage,
                                      reasks)


def _step_rows(step: FinishedStep | None) -> list[dict[str, Any]]:
    """The store writes a list of steps; a run has at most one to write at a time."""
    if step is None:
        return []
    return [{"step": step.key, "output": step.output, "duration_ms": step.duration_ms,
             "usage": step.usage, "reasks": sum(step.reasks.values())}]


def step_services(runtime: RunResources, job_id: uuid.UUID, dispatch_id: int,
                  stop: StopSignal, patience: Patience = FAIL_FAST) -> StepServices:
    """What the steps may use. Every write is fenced by this run's dispatch id: a run that
    lost the job (cancelled, timed out, reaped) gets RunSuperseded instead of writing."""
    settings = runtime.settings

    def write(work: Callable[[Conn], T]) -> T:
        return patience.run(runtime.pool, work)

    def fetch_page(url: str) -> fetch.FetchedPage:
        return fetch.fetch_page(url, allow_private=settings.fetch_allow_private,
                                deadline_s=settings.fetch_deadline_s, should_stop=stop.is_set)

    def save_image(step: str, part: str, image: GeneratedImage, prompt: str,
                   progress: int | None) -> str:
        # The image and the step's part that names it in one statement: no image is kept
        # that a resumed run would not find (and so draw again), none is lost once kept.
        image_id = uuid.uuid4()
        url = f"/api/v1/images/{image_id}"
        if not write(lambda conn: store.insert_step_image(conn, image_id, job_id, dispatch_id,
                                                          step, part, url, image.content_type,
                                                          image.data, prompt, progress)):
            raise RunSuperseded()
        return url

    def record_llm_call(step: str, model: str, input_tokens: int, output_tokens: int) -> None:
        # Written as the call returns, on its own short transaction (waiting out an outage
        # like every write of the run): a run killed or cut short after it still leaves it
        # counted. Bookkeeping: it never fails the step.
        job_metrics.llm_call(model, input_tokens, output_tokens)
        try:
            write(lambda conn: store.record_llm_call(conn, job_id, step, model, input_tokens,
                                                     output_tokens))
        except Exception:
            log.warning("job %s: could not record an LLM call of step %s (%s)", job_id, step,
                        model, exc_info=True)

    def create_organization(name: str, website_url: str, analysis: dict[str, Any]) -> str:
        # Deterministic id: a run repeated after a crash finds the row already there.
        organization_id = uuid.uuid5(_ORGANIZATION_NAMESPACE, str(job_id))
        if not write(lambda conn: store.insert_organization(
                conn, organization_id, job_id, dispatch_id, name, website_url, analysis)):
            raise RunSuperseded()
        return str(organization_id)

    def save_post(organization_id: str, post: dict[str, Any], status: str) -> dict[str, Any]:
        # Deterministic id, as above: saving twice keeps one post.
        post_id = uuid.uuid5(_POST_NAMESPACE, str(job_id))
        saved = write(lambda conn: store.insert_post(conn, post_id, uuid.UUID(organization_id),
                                                     job_id, dispatch_id, post, status))
        if saved is None:
            raise RunSuperseded()
        return saved.summary()

    return StepServices(provider=runtime.provider, fetch_page=fetch_page,
                        save_image=save_image, create_organization=create_organization,
                        save_post=save_post, should_stop=stop.is_set,
                        record_llm_call=record_llm_call,
                        record_llm_failure=job_metrics.llm_call_failed)


@dataclass(frozen=True)
class RunRecord:
    """The fenced writes of one run's outcome, shared by worker runs and in-request runs."""

    pool: ConnectionPool
    job_id: uuid.UUID
    dispatch_id: int
    patience: Patience = FAIL_FAST

    def finish(self, run: Callable[[], object]) -> None:
        """Runs `run` (the pipeline: its journal writes its success) and records how else
        it ended."""
        try:
            run()
        except RunSuperseded:
            self.settle_refused_run()
        except JobFailure as failure:
            self.fail(failure)
        except psycopg.OperationalError:
            # The database failed, not the job (and a worker's run waited for it until it
            # was stopped): nothing is failed here. A worker's run is handed back or
            # re-dispatched by the reaper and resumes after its last checkpoint; an
            # in-request run is failed by its caller.
            raise
        except Exception:
            log.exception("job %s: pipeline crashed", self.job_id)
            self.fail(JobFailure("Internal error while running the job"))

    def settle_refused_run(self) -> None:
        """A write was refused: either another run owns the job now (nothing to do), or a
        cancel was requested before the watchdog saw it, and this run writes the outcome."""
        verdict = self.row_verdict()
        if isinstance(verdict, JobFailure):
            self.fail(verdict)
        else:
            log.info("job %s: run %s superseded", self.job_id, self.dispatch_id)

    def row_verdict(self) -> BaseException | None:
        state = self.patience.run(self.pool, lambda conn: store.get_run_state(conn, self.job_id))
        if state is None or state.dispatch_id != self.dispatch_id or state.status != "running":
            return RunSuperseded()
        if state.cancel_requested:
            return Cancelled()
        return None

    def fail(self, failure: JobFailure) -> None:
        finished = self.patience.run(self.pool, lambda conn: store.fail_job(
            conn, self.job_id, self.dispatch_id, failure.message, failure.error_code))
        if finished is not None:
            job_metrics.job_finished(self.job_id, finished, failure.error_code)
