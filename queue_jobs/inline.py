"""Runs a job's pipeline inside the calling thread: the deprecated synchronous endpoints.

It is the same runner, steps, checkpoints and fences as a worker run, on a job row created
already running under a local dispatch id, so status polls, cancel, the active-job limit
and the dashboards see it like any other job. A per-step endpoint runs a slice of the
pipeline: the steps before it come in the request, as the checkpoints a resumed job would
have. A timer enforces JOB_TIMEOUT_S; a cancel requested through the API fences the run's
next write (the call in flight is bounded by its own timeout: there is no watchdog here).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from queue_jobs import jobs, store
from queue_jobs.errors import TimedOut
from queue_jobs.execution import DbJournal, RunRecord, step_services
from queue_jobs.fair_use import FairUse
from queue_jobs.pipeline.runner import Pipeline, RetryPolicy, StepInput, StopSignal, run_pipeline
from queue_jobs.pipelines import PIPELINES
from queue_jobs.runtime import RunResources
from queue_jobs.store import JobOutcome


@dataclass(frozen=True)
class InlineRun:
    job_id: uuid.UUID
    outcome: JobOutcome  # as recorded: succeeded with its result, or failed with its error


def pipeline_slice(job_type: str, step_key: str,
                   build_result: Callable[[StepInput], dict[str, Any]]) -> Pipeline:
    """One step of a job type's pipeline, with its own result body."""
    pipeline = PIPELINES[job_type]
    return replace(pipeline, steps=tuple(s for s in pipeline.steps if s.key == step_key),
                   build_result=build_result)


def run_inline(resources: RunResources, new: jobs.NewJob, policy: FairUse,
               pipeline: Pipeline | None = None,
               checkpoints: dict[str, Any] | None = None) -> InlineRun:
    """Creates the job (fair use applies, as for any create) and runs it to its end:
    the job type's whole pipeline, or `pipeline` (a slice) after `checkpoints`."""
    with resources.pool.connection() as conn:
        created = jobs.create_job(conn, new, policy, inline=True)
    assert created.inline_dispatch_id is not None  # inline=True, and no idempotency key
    job_id, dispatch_id = created.job_id, created.inline_dispatch_id
    settings = resources.settings
    stop = StopSignal()
    deadline = threading.Timer(settings.job_timeout_s, stop.stop, (TimedOut(),))
    deadline.daemon = True
    deadline.start()
    try:
        RunRecord(resources.pool, job_id, dispatch_id).finish(lambda: run_pipeline(
            pipeline or PIPELINES[new.job_type], str(job_id), new.job_input,
            checkpoints or {}, step_services(resources, job_id, dispatch_id, stop),
            DbJournal(resources, job_id, dispatch_id), stop,
            RetryPolicy(settings.step_retries, settings.retry_backoff_s)))
    finally:
        deadline.cancel()
    with resources.pool.connection() as conn:
        outcome = store.get_job_outcome(conn, job_id)
    assert outcome is not None  # jobs are only deleted by retention, long after
    return InlineRun(job_id, outcome)
