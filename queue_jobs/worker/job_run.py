"""One run of a job on a worker: claim, run the pipeline in a thread, watch it, finish.

The claim is normally made by the worker's fetch (queue_jobs.worker.handoff: the run is
handed it, and its success ends procrastinate's job too); a run handed none claims itself.

The watchdog (an asyncio loop beside the pipeline thread) is what makes cancel and
timeout prompt: it does not wait for a blocking LLM or HTTP call to return. It writes the
final state itself, fenced by this run's dispatch id, and tells the pipeline thread to
stop; whatever that thread tries to write afterwards is refused by the fence.

A run outlives a PostgreSQL outage: the pipeline's writes wait for the database until the
run is stopped (its deadline, kept by the watchdog on the local clock, stops it too), and
the final writes (a failure, a hand-back at shutdown) wait until the database answers or
the stopping worker gives up on it (DatabaseLink.given_up); the reaper then finds the run.
While the database is unreachable the watchdog skips its row polls (no cancel can be
requested meanwhile anyway).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import psycopg

from queue_jobs import models
from queue_jobs.db import connections, store
from queue_jobs.observability import logs
from queue_jobs.pipeline.failures import Cancelled, JobFailure, TimedOut
from queue_jobs.pipeline.registry import PIPELINES
from queue_jobs.pipeline.runner import (
    Pipeline,
    RetryPolicy,
    RunSuperseded,
    StopSignal,
    pending_steps,
    run_pipeline,
)
from queue_jobs.runs.journal import (
    ONE_SHORT_ATTEMPT,
    ROW_POLL_INTERVAL_S,
    DbJournal,
    Patience,
    RunRecord,
    step_services,
)
from queue_jobs.runs.resources import WorkerRuntime
from queue_jobs.worker.handoff import Prefetched
from queue_jobs.worker.link import DatabaseLink

log = logging.getLogger(__name__)
T = TypeVar("T")

# What a fresh job's claim shows as started.
FIRST_STEPS = {job_type: pipeline.steps[0].key for job_type, pipeline in PIPELINES.items()}
WATCH_INTERVAL_S = 0.25


class JobRun:
    def __init__(self, runtime: WorkerRuntime, job_id: uuid.UUID, dispatch_id: int,
                 link: DatabaseLink | None = None, prefetched: Prefetched | None = None
                 ) -> None:
        self.runtime = runtime
        self.job_id = job_id
        self.dispatch_id = dispatch_id
        self.prefetched = prefetched
        self.stop = StopSignal()
        link = link or DatabaseLink()
        # The pipeline's writes wait for the database while the run goes on; the outcome's
        # until the worker, stopping, gives up on the database.
        self.patience = Patience(gives_up=self.stop.is_set, wake=self.stop.event)
        self.final_patience = Patience(gives_up=link.given_up.is_set, wake=link.given_up)
        self.record = RunRecord(runtime.pool, job_id, dispatch_id, self.final_patience)
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
        # Cancelled or shutting down before the claim (a claim made by the fetch is
        # undone by the same outcome: the watchdog fails or hands back the job).
        if self.stop.is_set():
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
        services = step_services(self.runtime, self.job_id, self.dispatch_id, self.stop,
                                 self.patience)
        journal = DbJournal(self.runtime, self.job_id, self.dispatch_id, claimed.attempt,
                            self.patience,
                            self.prefetched.finish if self.prefetched else None)
        self.record.finish(lambda: run_pipeline(
            pipeline, str(self.job_id), claimed.input, claimed.step_outputs, services,
            journal, self.stop, policy,
            first_step_shown=_claim_shows_first_step(pipeline, claimed),
            parts=claimed.step_parts))

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
                verdict = await self._blocking(self._row_verdict_now)
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

    def _row_verdict_now(self) -> BaseException | None:
        try:
            return dataclasses.replace(self.record, patience=ONE_SHORT_ATTEMPT).row_verdict()
        except psycopg.Error as error:
            if connections.is_unreachable(error):
                return None  # the next poll asks again
            raise

    def _claim(self) -> models.ClaimedJob | None:
        if self.prefetched is not None:
            claimed = self.prefetched.claim
        else:
            claimed = self.patience.run(self.runtime.pool, lambda conn: store.claim_job(
                conn, self.job_id, self.dispatch_id, FIRST_STEPS))
        if claimed is not None:
            logs.event(log, "job.started", jobId=self.job_id, type=claimed.type,
                       attempt=claimed.attempt, dispatchId=self.dispatch_id,
                       resumesAfter=sorted(claimed.step_outputs))
        return claimed

    def _requeue(self) -> None:
        try:
            self.final_patience.run(self.runtime.pool, lambda conn: store.redispatch_job(
                conn, self.job_id, self.dispatch_id, lost=False,
                fair=self.runtime.settings.fair_dispatch))
        except psycopg.Error as error:
            if not connections.is_unreachable(error):
                raise
            log.warning("job %s: not handed back (database unreachable): left for the "
                        "reaper, which re-dispatches it without counting a lost run",
                        self.job_id)


def _claim_shows_first_step(pipeline: Pipeline, claimed: models.ClaimedJob) -> bool:
    """The claim started the step its row shows: is it the first one still to run?"""
    pending = pending_steps(pipeline, claimed.step_outputs)
    return bool(pending) and claimed.current_step == pipeline.steps[pending[0]].key


def _retrieve_exception(future: Future[Any] | asyncio.Future[Any]) -> None:
    # An abandoned run's outcome is of no interest; retrieving it keeps logs quiet.
    if not future.cancelled():
        future.exception()
