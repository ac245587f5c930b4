"""The worker process's own state on GET /metrics (queue_jobs.worker.main, WORKER_METRICS_PORT),
served from prometheus_client's default in-process registry.

Counters of jobs, steps and LLM calls are recorded by the execution layer where the work
happens (queue_jobs.observability.job_metrics; they land in the same default registry, so a worker's
/metrics carries them). The worker's own state, its procrastinate id and heartbeat age,
is not recorded at all: WorkerStateCollector reads it at scrape time. queue_jobs.worker.main
registers that collector; importing this module registers nothing, so the web side
(gunicorn, multiprocess mode) never exports a worker's heartbeat.

A worker keeps its own in-process registry: queue_jobs.worker.main removes
PROMETHEUS_MULTIPROC_DIR from its environment before prometheus_client is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

HEARTBEAT_AGE = "jobs_worker_heartbeat_age_seconds"
WORKER_INFO = "jobs_worker_info"


@dataclass(frozen=True)
class WorkerState:
    """What a scrape reports: None when unknown (not registered, database unreachable)."""

    worker_id: int | None
    heartbeat_age_s: float | None


class WorkerStateCollector(Collector):
    """jobs_worker_heartbeat_age_seconds and jobs_worker_info{worker_id}, read at scrape
    time through `read` (queue_jobs.worker.main reads the heartbeat row from PostgreSQL)."""

    def __init__(self, read: Callable[[], WorkerState]) -> None:
        self._read = read

    def describe(self) -> Iterator[Metric]:
        # Names only: registering must not call `read` (no database at import time).
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        state = self._read()
        age, info = self._families()
        if state.heartbeat_age_s is not None:
            age.add_metric([], state.heartbeat_age_s)
        if state.worker_id is not None:
            info.add_metric([str(state.worker_id)], 1)
        yield from (age, info)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                HEARTBEAT_AGE,
                "Seconds since this worker's last heartbeat in procrastinate_workers, read "
                "from PostgreSQL at scrape time (absent while not registered or when the "
                "database is unreachable)."),
            GaugeMetricFamily(
                WORKER_INFO, "This worker process (value 1) by its procrastinate worker id.",
                labels=["worker_id"]),
        )
