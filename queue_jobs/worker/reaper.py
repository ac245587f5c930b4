"""Recovers jobs whose run was lost with its worker, and fails runs past their deadline.

procrastinate notices dead workers (stale heartbeats) but recovers nothing by itself.
Each recovery is one short transaction guarded by the dispatch id the reaper saw, so a
run that was only slow (and comes back) is fenced out rather than duplicated in state.

Silence is counted only over time in which the database was up (see lost_runs in
sql/queries/procrastinate.sql): a worker living through an outage is not lost, and a run
whose worker went away during an outage (a shutdown that could not hand it back) is
re-dispatched without counting a lost run against the job. The reaper also prunes the rows
of lost workers, by the same rule, once their runs are recovered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import ConnectionPool

from queue_jobs.db import connections, store
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
    uncharged: list[str] = field(default_factory=list)  # re-dispatched, no lost run counted
    pruned_workers: int = 0


def reap(pool: ConnectionPool, *, stalled_after_s: float, max_lost_runs: int,
         job_timeout_s: float, up_for_s: float | None = None,
         fair_dispatch: bool = True) -> ReapReport:
    """up_for_s: how long ago this worker reconnected after an outage (None: never);
    fair_dispatch: the re-dispatches' priority (FAIR_DISPATCH)."""
    report = ReapReport()
    with pool.connection() as conn:
        lost = store.lost_runs(conn, stalled_after_s, up_for_s)
        dead_inline = store.dead_inline_runs(conn, stalled_after_s)
        overdue = store.overdue_runs(conn, job_timeout_s + TIMEOUT_GRACE_S)
    for run in lost:
        _recover(pool, run, max_lost_runs, report, fair_dispatch)
    for run in dead_inline:  # nobody can resume a request that is gone
        _fail(pool, run, Cancelled() if run["cancel_requested"] else WorkerLost(), report)
    for run in overdue:
        # The worker may still be alive: ask it to abort rather than yank its row.
        _fail(pool, run, TimedOut(), report, worker_dead=False)
    with connections.autocommit(pool) as conn:
        report.pruned_workers = store.prune_lost_workers(conn, stalled_after_s, up_for_s)
    if report.redispatched or report.failed:
        log.warning("reaper: redispatched %s, failed %s", report.redispatched, report.failed)
    return report


def _recover(pool: ConnectionPool, run: dict[str, Any], max_lost_runs: int,
             report: ReapReport, fair_dispatch: bool) -> None:
    charged = bool(run["charged"])
    if run["cancel_requested"]:
        _fail(pool, run, Cancelled(), report)
    elif charged and run["lost_runs"] + 1 >= max_lost_runs:
        _fail(pool, run, WorkerLost(), report)
    else:
        with pool.connection() as conn, conn.transaction():
            store.finish_lost_dispatch(conn, run["dispatch_id"])
            redispatched = store.redispatch_job(conn, run["id"], run["dispatch_id"],
                                                lost=charged, fair=fair_dispatch)
        if redispatched:
            report.redispatched.append(str(run["id"]))
            if not charged:
                report.uncharged.append(str(run["id"]))
            logs.event(log, "job.redispatched", jobId=run["id"],
                       lostRuns=run["lost_runs"] + int(charged), charged=charged)


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
