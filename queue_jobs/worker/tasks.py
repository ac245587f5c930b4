"""procrastinate tasks. Thin: they hand over to the execution layer and the reaper."""

from __future__ import annotations

import asyncio
import uuid

from procrastinate import JobContext
from procrastinate.job_context import AbortReason

from queue_jobs.config.settings import QueueSettings
from queue_jobs.db.store import QUEUE, RUN_TASK
from queue_jobs.runs.resources import runtime_for
from queue_jobs.worker import housekeeping, reaper
from queue_jobs.worker.app import app, settings
from queue_jobs.worker.handoff import HANDOFF, Prefetched, RunHandoff
from queue_jobs.worker.job_run import JobRun
from queue_jobs.worker.link import LINK, DatabaseLink


def _settings(context: JobContext) -> QueueSettings:
    given = context.additional_context.get("settings")
    return given if isinstance(given, QueueSettings) else settings


def _link(context: JobContext) -> DatabaseLink | None:
    """The worker's link to PostgreSQL (queue_jobs.worker.resilient puts it there)."""
    given = context.additional_context.get(LINK)
    return given if isinstance(given, DatabaseLink) else None


def _prefetched(context: JobContext) -> Prefetched | None:
    """The claim the worker's fetch made (queue_jobs.worker.handoff), if it made one."""
    handoff = context.additional_context.get(HANDOFF)
    if not isinstance(handoff, RunHandoff) or context.job.id is None:
        return None
    return handoff.get(context.job.id)


@app.task(name=RUN_TASK, queue=QUEUE, pass_context=True)
async def run_job(context: JobContext, job_id: str) -> None:
    assert context.job.id is not None
    run = JobRun(runtime_for(_settings(context)), uuid.UUID(job_id), context.job.id,
                 _link(context), _prefetched(context))
    await run.execute(is_shutdown=lambda: context.abort_reason() == AbortReason.SHUTDOWN)


@app.periodic(cron=f"* * * * * */{settings.reaper_interval_s}", periodic_id="reaper")
@app.task(name="reap_lost_jobs", queue="maintenance", queueing_lock="reap_lost_jobs",
          pass_context=True)
async def reap_lost_jobs(context: JobContext, timestamp: int) -> None:
    runtime = runtime_for(_settings(context))
    settings = runtime.settings
    link = _link(context)
    await asyncio.get_running_loop().run_in_executor(
        runtime.executor, lambda: reaper.reap(
            runtime.pool, stalled_after_s=settings.stalled_after_s,
            max_lost_runs=settings.max_lost_runs, job_timeout_s=settings.job_timeout_s,
            up_for_s=link.up_for_s() if link else None,
            fair_dispatch=settings.fair_dispatch))


@app.periodic(cron="23 * * * *", periodic_id="housekeeping")
@app.task(name="sweep_expired_rows", queue="maintenance", queueing_lock="sweep_expired_rows",
          pass_context=True)
async def sweep_expired_rows(context: JobContext, timestamp: int) -> None:
    runtime = runtime_for(_settings(context))
    await asyncio.get_running_loop().run_in_executor(
        runtime.executor, housekeeping.sweep, runtime.pool, runtime.settings.retention_days)
