"""How a run of a job's pipeline meets the database, for a worker's run and for a
synchronous call alike: the journal of steps and checkpoints, the services the steps are
handed (fetch, images, organizations, posts), and the record of the run's outcome. Every
write is fenced by the run's dispatch id: a superseded run writes nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from queue_jobs.db import connections, store
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


@dataclass(frozen=True)
class DbJournal:
    runtime: RunResources
    job_id: uuid.UUID
    dispatch_id: int
    attempt: int  # the job's attempt when this run claimed it (step records carry it)

    def start_step(self, step: str, progress: int) -> None:
        with connections.autocommit(self.runtime.pool) as conn:
            if not store.start_step(conn, self.job_id, self.dispatch_id, step, progress):
                raise RunSuperseded()

    def checkpoint(self, step: FinishedStep, progress: int, next_step: str) -> None:
        with connections.autocommit(self.runtime.pool) as conn:
            job_type = store.checkpoint_steps(conn, self.job_id, self.dispatch_id,
                                              _step_rows(step), progress, self.attempt,
                                              next_step)
        self._saved(step, job_type)

    def succeed(self, step: FinishedStep | None, result: dict[str, Any]) -> None:
        with connections.autocommit(self.runtime.pool) as conn:
            finished = store.succeed_job(conn, self.job_id, self.dispatch_id, result,
                                         _step_rows(step), self.attempt)
        self._saved(step, finished.type if finished else None)
        assert finished is not None  # _saved raised otherwise
        job_metrics.job_finished(self.job_id, finished, "succeeded")

    def _saved(self, step: FinishedStep | None, job_type: str | None) -> None:
        """After a write of a finished step: job_type None means the run lost the job."""
        if job_type is None:
            # The run lost the job before it could keep the output; the calls were made.
            if step is not None:
                self.step_failed(step.key, step.duration_ms, step.usage, "interrupted")
            raise RunSuperseded()
        if step is not None:
            job_metrics.step_finished(self.job_id, job_type, step.key, "succeeded",
                                      step.duration_ms, step.usage)

    def step_failed(self, step: str, duration_ms: int, usage: list[dict[str, Any]],
                    outcome: str) -> None:
        try:
            with connections.autocommit(self.runtime.pool) as conn:
                job_type = store.record_unfinished_step(conn, self.job_id, step, outcome,
                                                        duration_ms, usage, self.attempt)
        except Exception:  # the step's own outcome is what matters; this is bookkeeping
            log.warning("job %s: could not record step %s (%s)", self.job_id, step, outcome,
                        exc_info=True)
            return
        if job_type is not None:
            job_metrics.step_finished(self.job_id, job_type, step, outcome, duration_ms, usage)


def _step_rows(step: FinishedStep | None) -> list[dict[str, Any]]:
    """The store writes a list of steps; a run has at most one to write at a time."""
    if step is None:
        return []
    return [{"step": step.key, "output": step.output, "duration_ms": step.duration_ms,
             "usage": step.usage}]


def step_services(runtime: RunResources, job_id: uuid.UUID, dispatch_id: int,
                  stop: StopSignal) -> StepServices:
    """What the steps may use. Every write is fenced by this run's dispatch id: a run that
    lost the job (cancelled, timed out, reaped) gets RunSuperseded instead of writing."""
    settings = runtime.settings

    def fetch_page(url: str) -> fetch.FetchedPage:
        return fetch.fetch_page(url, allow_private=settings.fetch_allow_private,
                                deadline_s=settings.fetch_deadline_s, should_stop=stop.is_set)

    def save_image(image: GeneratedImage, prompt: str) -> str:
        image_id = uuid.uuid4()
        with connections.autocommit(runtime.pool) as conn:
            if not store.insert_image(conn, image_id, job_id, dispatch_id, image.content_type,
                                      image.data, prompt):
                raise RunSuperseded()
        return f"/api/v1/images/{image_id}"

    def create_organization(name: str, website_url: str, analysis: dict[str, Any]) -> str:
        # Deterministic id: a run repeated after a crash finds the row already there.
        organization_id = uuid.uuid5(_ORGANIZATION_NAMESPACE, str(job_id))
        with connections.autocommit(runtime.pool) as conn:
            if not store.insert_organization(conn, organization_id, job_id, dispatch_id, name,
                                             website_url, analysis):
                raise RunSuperseded()
        return str(organization_id)

    def save_post(organization_id: str, post: dict[str, Any], status: str) -> dict[str, Any]:
        # Deterministic id, as above: saving twice keeps one post.
        post_id = uuid.uuid5(_POST_NAMESPACE, str(job_id))
        with connections.autocommit(runtime.pool) as conn:
            saved = store.insert_post(conn, post_id, uuid.UUID(organization_id), job_id,
                                      dispatch_id, post, status)
        if saved is None:
            raise RunSuperseded()
        return saved.summary()

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
        with connections.autocommit(self.pool) as conn:
            state = store.get_run_state(conn, self.job_id)
        if state is None or state.dispatch_id != self.dispatch_id or state.status != "running":
            return RunSuperseded()
        if state.cancel_requested:
            return Cancelled()
        return None

    def fail(self, failure: JobFailure) -> None:
        with connections.autocommit(self.pool) as conn:
            finished = store.fail_job(conn, self.job_id, self.dispatch_id, failure.message,
                                      failure.error_code)
        if finished is not None:
            job_metrics.job_finished(self.job_id, finished, failure.error_code)
