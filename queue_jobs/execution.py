"""One run of a job on a worker: claim, run the pipeline in a thread, watch it, finish.

The watchdog (an asyncio loop beside the pipeline thread) is what makes cancel and
timeout prompt: it does not wait for a blocking LLM or HTTP call to return. It writes the
final state itself, fenced by this run's dispatch id, and tells the pipeline thread to
stop; whatever that thread tries to write afterwards is refused by the fence.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from queue_jobs import db, fetch, job_metrics, logs, organizations, store
from queue_jobs.errors import Cancelled, JobFailure, TimedOut
from queue_jobs.llm.base import GeneratedImage
from queue_jobs.pipeline.runner import (
    FinishedStep,
    Pipeline,
    RetryPolicy,
    RunSuperseded,
    StepServices,
    StopSignal,
    pending_steps,
    run_pipeline,
)
from queue_jobs.pipelines import PIPELINES
from queue_jobs.runtime import RunResources, WorkerRuntime

log = logging.getLogger(__name__)
T = TypeVar("T")

# What a fresh job's claim shows as started.
FIRST_STEPS = {job_type: pipeline.steps[0].key for job_type, pipeline in PIPELINES.items()}
WATCH_INTERVAL_S = 0.25
ROW_POLL_INTERVAL_S = 1.0  # our own cancel check, in case procrastinate's abort is missed
_ORGANIZATION_NAMESPACE = uuid.UUID("6f1d7c1e-1c55-4f0a-9d36-2f8a3c4f3b10")
_POST_NAMESPACE = uuid.UUID("0b0e7f5e-5a52-4d8e-9a43-54c1f0d1b7a2")


@dataclass(frozen=True)
class DbJournal:
    runtime: RunResources
    job_id: uuid.UUID
    dispatch_id: int
    attempt: int  # the job's attempt when this run claimed it (step records carry it)

    def start_step(self, step: str, progress: int) -> None:
        with db.autocommit(self.runtime.pool) as conn:
            if not store.start_step(conn, self.job_id, self.dispatch_id, step, progress):
                raise RunSuperseded()

    def checkpoint(self, steps: list[FinishedStep], progress: int,
                   next_step: str | None) -> None:
        with db.autocommit(self.runtime.pool) as conn:
            job_type = store.checkpoint_steps(conn, self.job_id, self.dispatch_id,
                                              _step_rows(steps), progress, self.attempt,
                                              next_step)
        self._saved(steps, job_type)

    def succeed(self, steps: list[FinishedStep], result: dict[str, Any]) -> None:
        with db.autocommit(self.runtime.pool) as conn:
            finished = store.succeed_job(conn, self.job_id, self.dispatch_id, result,
                                         _step_rows(steps), self.attempt)
        self._saved(steps, finished.type if finished else None)
        assert finished is not None  # _saved raised otherwise
        job_metrics.job_finished(self.job_id, finished, "succeeded")

    def _saved(self, steps: list[FinishedStep], job_type: str | None) -> None:
        """After a write of finished steps: job_type None means the run lost the job."""
        if job_type is None:
            # The run lost the job before it could keep the outputs; their calls were made.
            for step in steps:
                self.step_failed(step.key, step.duration_ms, step.usage, "interrupted")
            raise RunSuperseded()
        for step in steps:
            job_metrics.step_finished(self.job_id, job_type, step.key, "succeeded",
                                      step.duration_ms, step.usage)

    def step_failed(self, step: str, duration_ms: int, usage: list[dict[str, Any]],
                    outcome: str) -> None:
        try:
            with db.autocommit(self.runtime.pool) as conn:
                job_type = store.record_unfinished_step(conn, self.job_id, step, outcome,
                                                        duration_ms, usage, self.attempt)
        except Exception:  # the step's own outcome is what matters; this is bookkeeping
            log.warning("job %s: could not record step %s (%s)", self.job_id, step, outcome,
                        exc_info=True)
            return
        if job_type is not None:
            job_metrics.step_finished(self.job_id, job_type, step, outcome, duration_ms, usage)


def _step_rows(steps: list[FinishedStep]) -> list[dict[str, Any]]:
    return [{"step": s.key, "output": s.output, "duration_ms": s.duration_ms, "usage": s.usage}
            for s in steps]


def step_services(runtime: RunResources, job_id: uuid.UUID, dispatch_id: int,
                  stop: StopSignal) -> StepServices:
    """What the steps may use. Every write is fenced by this run's dispatch id: a run that
    lost the job (cancelled, timed out, reaped) gets RunSuperseded instead of writing."""
    settings = runtime.settings

    def fetch_page(url: str) -> fetch.FetchedPage:
        return fetch.fetch_page(url, allow_private=settings.fetch_allow_private,
                                should_stop=stop.is_set)

    def save_image(image: GeneratedImage, prompt: str) -> str:
        image_id = uuid.uuid4()
        with db.autocommit(runtime.pool) as conn:
            if not store.insert_image(conn, image_id, job_id, dispatch_id, image.content_type,
                                      image.data, prompt):
                raise RunSuperseded()
        return f"/api/v1/images/{image_id}"

    def create_organization(name: str, website_url: str, analysis: dict[str, Any]) -> str:
        # Deterministic id: a run repeated after a crash finds the row already there.
        organization_id = uuid.uuid5(_ORGANIZATION_NAMESPACE, str(job_id))
        with db.autocommit(runtime.pool) as conn:
            if not store.insert_organization(conn, organization_id, job_id, dispatch_id, name,
                                             website_url, analysis):
                raise RunSuperseded()
        return str(organization_id)

    def save_post(organization_id: str, post: dict[str, Any], status: str) -> dict[str, Any]:
        # Deterministic id, as above: saving twice keeps one post.
        post_id = uuid.uuid5(_POST_NAMESPACE, str(job_id))
        with db.autocommit(runtime.pool) as conn:
            saved = store.insert_post(conn, post_id, uuid.UUID(organization_id), job_id,
                                      dispatch_id, post, status)
        if saved is None:
            raise RunSuperseded()
        return organizations.saved_post_summary(saved)

    return StepServices(provider=runtime.provider, fetch_page=fetch_page,
                        save_image=save_image, create_organization=create_organization,
                        save_post=save_post, should_stop=stop.is_set)


@dataclass(frozen=True)
class RunRecord:
    """The fenced writes of one run's outcome, shared by worker runs and in-request runs."""

    pool: ConnectionPool
    job_id: uuid.UUID
    dispatch_id: int

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
            # The database failed, not the job: nothing is failed here. A worker's run is
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
        with db.autocommit(self.pool) as conn:
            state = store.get_run_state(conn, self.job_id)
        if state is None or state.dispatch_id != self.dispatch_id or state.status != "running":
            return RunSuperseded()
        if state.cancel_requested:
            return Cancelled()
        return None

    def fail(self, failure: JobFailure) -> None:
        with db.autocommit(self.pool) as conn:
            finished = store.fail_job(conn, self.job_id, self.dispatch_id, failure.message,
                                      failure.error_code)
        if finished is not None:
            job_metrics.job_finished(self.job_id, finished, failure.error_code)


class JobRun:
    def __init__(self, runtime: WorkerRuntime, job_id: uuid.UUID, dispatch_id: int) -> None:
        self.runtime = runtime
        self.job_id = job_id
        self.dispatch_id = dispatch_id
        self.stop = StopSignal()
        self.record = RunRecord(runtime.pool, job_id, dispatch_id)
        # Set once the claim is answered: the deadline and the row polls start from there
        # (before, the row is still queued, and a wait for a thread or a connection is not
        # the job's run time).
        self.claimed = threading.Event()
        self.claimed_at = 0.0  # time.monotonic(), as the event loop's clock

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.runtime.executor, fn, *args)

    async def execute(self, is_shutdown: Callable[[], bool]) -> None:
        # The whole run (claim, pipeline, outcome) is one call in an executor thread: one
        # hand-over per job. The loop only watches it, for cancel, timeout and shutdown.
        future: Future[None] = self.runtime.executor.submit(self._run)
        future.add_done_callback(_retrieve_exception)
        try:
            await self._watch(future)
        except asyncio.CancelledError:
            # procrastinate aborts the task on a cancel request or on worker shutdown.
            if is_shutdown():
                self.stop.stop(RunSuperseded())
                await self._blocking(self._requeue)
            else:
                await self._end_early(Cancelled())
            raise

    def _run(self) -> None:
        if self.stop.is_set():  # cancelled or shutting down before the claim
            return
        try:
            claimed = self._claim()
        finally:
            self.claimed_at = time.monotonic()
            self.claimed.set()
        if claimed is None:
            log.info("job %s: dispatch %s no longer current, skipping", self.job_id,
                     self.dispatch_id)
            return
        pipeline = PIPELINES[claimed.type]
        settings = self.runtime.settings
        policy = RetryPolicy(settings.step_retries, settings.retry_backoff_s)
        services = step_services(self.runtime, self.job_id, self.dispatch_id, self.stop)
        journal = DbJournal(self.runtime, self.job_id, self.dispatch_id, claimed.attempt)
        self.record.finish(lambda: run_pipeline(
            pipeline, str(self.job_id), claimed.input, claimed.step_outputs, services,
            journal, self.stop, policy,
            first_step_shown=_claim_shows_first_step(pipeline, claimed)))

    async def _watch(self, future: Future[None]) -> None:
        loop = asyncio.get_running_loop()
        deadline = next_row_poll = None
        wrapped = asyncio.wrap_future(future)
        wrapped.add_done_callback(_retrieve_exception)  # the outcome is read from `future`
        while True:
            done, _ = await asyncio.wait({wrapped}, timeout=WATCH_INTERVAL_S)
            if done:
                future.result()  # the run recorded its outcome; this raises what it could not
                return
            if not self.claimed.is_set():
                continue  # a cancel or a shutdown still reaches us (as CancelledError)
            now = loop.time()
            if deadline is None or next_row_poll is None:
                deadline = self.claimed_at + self.runtime.settings.job_timeout_s
                next_row_poll = self.claimed_at + ROW_POLL_INTERVAL_S
            if now >= deadline:
                await self._end_early(TimedOut())
                return
            if now >= next_row_poll:
                next_row_poll = now + ROW_POLL_INTERVAL_S
                verdict = await self._blocking(self.record.row_verdict)
                if isinstance(verdict, JobFailure):
                    await self._end_early(verdict)
                    return
                if verdict is not None:
                    self.stop.stop(verdict)
                    return

    async def _end_early(self, failure: JobFailure) -> None:
        self.stop.stop(failure)
        await self._blocking(self.record.fail, failure)

    # --- blocking helpers, run in the executor -------------------------------------------

    def _claim(self) -> store.ClaimedJob | None:
        with db.autocommit(self.runtime.pool) as conn:
            claimed = store.claim_job(conn, self.job_id, self.dispatch_id, FIRST_STEPS)
        if claimed is not None:
            logs.event(log, "job.started", jobId=self.job_id, type=claimed.type,
                       attempt=claimed.attempt, dispatchId=self.dispatch_id,
                       resumesAfter=sorted(claimed.step_outputs))
        return claimed

    def _requeue(self) -> None:
        with db.autocommit(self.runtime.pool) as conn:
            store.redispatch_job(conn, self.job_id, self.dispatch_id, lost=False)


def _claim_shows_first_step(pipeline: Pipeline, claimed: store.ClaimedJob) -> bool:
    """The claim started the step its row shows: is it the first one still to run?"""
    pending = pending_steps(pipeline, claimed.step_outputs)
    return bool(pending) and claimed.current_step == pipeline.steps[pending[0]].key


def _retrieve_exception(future: Future[Any] | asyncio.Future[Any]) -> None:
    # An abandoned run's outcome is of no interest; retrieving it keeps logs quiet.
    if not future.cancelled():
        future.exception()
