"""Recovers jobs whose run was lost with its worker, and fails runs past their deadline.

procrastinate notices dead workers (stale heartbeats) but recovers nothing by itself.
Each recovery is one short transaction guarded by the dispatch id the reaper saw, so a
run that was only slow (and comes back) is fenced out rather than duplicated in state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import ConnectionPool

from queue_jobs.db import store
from queue_jobs.observability import job_metrics, logs
from queue_jobs.pipeline.failures import Cancelled, JobFailure, TimedOut, WorkerLost

log = logging.getLogger(__name__)
# A run over its deadline is normally failed by its own watchdog; the reaper steps in
# only after this grace, when the worker is evidently not doing it.
TIMEOUT_GRACE_S = 30


@dataclass
class ReapReport:
    redispatched: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def reap(pool: ConnectionPool, *, stalled_after_s: float, max_lost_runs: int,
         job_timeout_s: float) -> ReapReport:
    report = ReapReport()
    with pool.connection() as conn:
        lost = store.lost_runs(conn, stalled_after_s)
        dead_inline = store.dead_inline_runs(conn, stalled_after_s)
        overdue = store.overdue_runs(conn, job_timeout_s + TIMEOUT_GRACE_S)
    for run in lost:
        _recover(pool, run, max_lost_runs, report)
    for run in dead_inline:  # nobody can resume a request that is gone
        _fail(pool, run, Cancelled() if run["cancel_requested"] else WorkerLost(), report)
    for run in overdue:
        # The worker may still be alive: ask it to abort rather than yank its row.
        _fail(pool, run, TimedOut(), report, worker_dead=False)
    if report.redispatched or report.failed:
        log.warning("reaper: redispatched %s, failed %s", report.redispatched, report.failed)
    return report


def _recover(pool: ConnectionPool, run: dict[str, Any], max_lost_runs: int,
             report: ReapReport) -> None:
    if run["cancel_requested"]:
        _fail(pool, run, Cancelled(), report)
    elif run["lost_runs"] + 1 >= max_lost_runs:
        _fail(pool, run, WorkerLost(), report)
    else:
        with pool.connection() as conn, conn.transaction():
            store.finish_lost_dispatch(conn, run["dispatch_id"])
            redispatched = store.redispatch_job(conn, run["id"], run["dispatch_id"], lost=True)
        if redispatched:
            report.redispatched.append(str(run["id"]))
            logs.event(log, "job.redispatched", jobId=run["id"], lostRuns=run["lost_runs"] + 1)


def _fail(pool: ConnectionPool, run: dict[str, Any], failure: JobFailure,
          report: ReapReport, worker_dead: bool = True) -> None:
    with pool.connection() as conn, conn.transaction():
        if worker_dead:
            store.finish_lost_dispatch(conn, run["dispatch_id"])
        else:
            store.cancel_dispatch(conn, run["dispatch_id"])
        finished = store.fail_job(conn, run["id"], run["dispatch_id"], failure.message,
                                  failure.error_code)
    if finished is not None:
        report.failed.append(str(run["id"]))
        job_metrics.job_finished(run["id"], finished, failure.error_code)
