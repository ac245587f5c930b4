"""Runs a job's pipeline inside the calling thread: the deprecated synchronous endpoints.

It is the same runner, steps, checkpoints and fences as a worker run, on a job row created
already running under a local dispatch id, so status polls, cancel, the active-job limit
and the dashboards see it like any other job. A per-step endpoint runs a slice of the
pipeline: the steps before it come in the request, as the checkpoints a resumed job would
have.

A watchdog thread does for the request what the worker's watchdog does for a task: every
second it beats the row's heartbeat (a run whose process died stops beating, and the
reaper fails it), and it ends the run at once on a cancel or past JOB_TIMEOUT_S, writing
the outcome itself while the request thread finishes its blocked call.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from queue_jobs.db import connections, store
from queue_jobs.models import JobOutcome, Owner
from queue_jobs.pipeline import website_analysis
from queue_jobs.pipeline.failures import JobFailure, TimedOut
from queue_jobs.pipeline.pages import PageFacts
from queue_jobs.pipeline.registry import PIPELINES
from queue_jobs.pipeline.runner import Pipeline, RetryPolicy, StepInput, StopSignal, run_pipeline
from queue_jobs.runs.journal import ROW_POLL_INTERVAL_S, DbJournal, RunRecord, step_services
from queue_jobs.runs.resources import RunResources
from queue_jobs.services import jobs
from queue_jobs.services.catalog import sync_failure_status
from queue_jobs.services.fair_use import FairUse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InlineRun:
    job_id: uuid.UUID
    outcome: JobOutcome  # as recorded: succeeded with its result, or failed with its error

    @property
    def failure_status(self) -> int:
        """The HTTP status a synchronous call answers this run's failure with."""
        return sync_failure_status(self.outcome.error_code)


class _Watchdog(threading.Thread):
    def __init__(self, resources: RunResources, record: RunRecord, stop: StopSignal) -> None:
        super().__init__(name=f"inline-watchdog-{record.job_id}", daemon=True)
        self._resources, self._record, self._signal = resources, record, stop
        self._halted = threading.Event()
        self._deadline = time.monotonic() + resources.settings.job_timeout_s

    def halt(self) -> None:
        self._halted.set()
        self.join(5)

    def run(self) -> None:
        while not self._halted.wait(ROW_POLL_INTERVAL_S):
            try:
                if self._check():
                    return
            except Exception:  # a database hiccup: keep watching, the reaper is the backstop
                log.warning("job %s: watchdog check failed", self._record.job_id,
                            exc_info=True)

    def _check(self) -> bool:
        """True once the run has been ended here."""
        record = self._record
        if time.monotonic() >= self._deadline:
            verdict: BaseException | None = TimedOut()
        else:
            with connections.autocommit(self._resources.pool) as conn:
                store.beat_inline_run(conn, record.job_id, record.dispatch_id)
            verdict = record.row_verdict()
        if verdict is None:
            return False
        self._signal.stop(verdict)
        if isinstance(verdict, JobFailure):
            record.fail(verdict)
        return True


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
    record = RunRecord(resources.pool, job_id, dispatch_id)
    stop = StopSignal()
    watchdog = _Watchdog(resources, record, stop)
    watchdog.start()
    try:
        record.finish(lambda: run_pipeline(
            pipeline or PIPELINES[new.job_type], str(job_id), new.job_input,
            checkpoints or {}, step_services(resources, job_id, dispatch_id, stop),
            DbJournal(resources, job_id, dispatch_id, attempt=1), stop,
            RetryPolicy(settings.step_retries, settings.retry_backoff_s)))
    except BaseException:
        # finish() records every failure of the pipeline; this is the database failing
        # under it (or the process being stopped): try to leave no run behind.
        with contextlib.suppress(Exception):
            record.fail(JobFailure("Internal error while running the job"))
        raise
    finally:
        watchdog.halt()
    with connections.autocommit(resources.pool) as conn:
        outcome = store.get_job_outcome(conn, job_id)
    assert outcome is not None  # jobs are only deleted by retention, long after
    return InlineRun(job_id, outcome)


# The deprecated per-step endpoints: each runs one website-analysis step on the earlier
# steps' outputs, which come in the request body, as the checkpoints a resumed job has.
_EARLIER_OUTPUTS: dict[str, dict[str, Callable[[dict[str, Any]], Any]]] = {
    "audiences": {},
    "pitches": {"audiences": lambda body: {"audiences": body["audiences"]}},
    "images": {
        "audiences": lambda body: {"audiences": [s["audience"] for s in body["scenarios"]]},
        "pitches": lambda body: {"pitches": [s["pitch"] for s in body["scenarios"]]},
    },
}
_STEP_RESULTS: dict[str, Callable[[StepInput], dict[str, Any]]] = {
    "audiences": lambda step: {"success": True,
                               "audiences": step.outputs["audiences"]["audiences"]},
    "pitches": lambda step: {"success": True,
                             "scenarios": website_analysis.scenarios(step, with_images=False)},
    "images": lambda step: {"success": True, "scenarios": website_analysis.scenarios(step)},
}
WEBSITE_STEPS = tuple(_STEP_RESULTS)


def run_website_step(resources: RunResources, step: str, owner: Owner, body: dict[str, Any],
                     client_address: str, policy: FairUse) -> InlineRun:
    """One website-analysis step (`WEBSITE_STEPS`) of a validated per-step request body."""
    page = PageFacts(url=body["url"] or "", title=body["analysis"]["businessName"],
                     description=body["analysis"]["description"], site_name="")
    checkpoints = {"analyze": {"page": page.to_dict(), "analysis": body["analysis"]},
                   **{key: make(body) for key, make in _EARLIER_OUTPUTS[step].items()}}
    new = jobs.NewJob(website_analysis.JOB_TYPE, owner, {"url": body["url"], "legacyStep": step},
                      request_body=body, client_address=client_address)
    return run_inline(resources, new, policy,
                      pipeline_slice(website_analysis.JOB_TYPE, step, _STEP_RESULTS[step]),
                      checkpoints)
