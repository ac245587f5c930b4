"""GET /metrics: Prometheus text. HTTP latency and the job counters of
queue_jobs.observability.job_metrics are measured in every gunicorn process (multiprocess mode when
PROMETHEUS_MULTIPROC_DIR is set, as webapp/gunicorn_conf.py does); active jobs, queue depth,
the oldest queued job's age, recent step durations, live workers and the database's
connections are read from PostgreSQL at scrape time (JobTableCollector). Workers serve
their own counters on WORKER_METRICS_PORT. ops/prometheus/alerts.yml alerts on these.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from flask import Blueprint, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from queue_jobs.models import JobType
from queue_jobs.observability import job_metrics, live_metrics
from queue_jobs.services import monitoring
from webapp.context import db_pool

bp = Blueprint("metrics", __name__)

HTTP_LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency by route and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
# The histogram's children by (method, route pattern, status): as few as its label sets.
_latency_by_labels: dict[tuple[str, str, int], Histogram] = {}
# Any token is an HTTP method: a client must not be able to grow the label set.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class JobTableCollector(Collector):
    """What PostgreSQL knows and no process sees happen, read at scrape time
    (queue_jobs.services.monitoring.scrape_stats says why, and what a failed read does):
    active jobs, queue depth and the oldest queued job's age, recent step durations, live
    workers, and the server's connections against max_connections."""

    def collect(self) -> Iterator[Metric]:
        stats = monitoring.scrape_stats(db_pool())
        if stats is not None:  # else unreachable or too slow: the rest still answers
            yield from scrape_families(stats)


def scrape_families(stats: monitoring.ScrapeStats) -> Iterator[Metric]:
    """The gauges of one scrape's read (tests list the metric names from it)."""
    active = GaugeMetricFamily("jobs_active", "Queued and running jobs by type.",
                               labels=["type", "status"])
    depth = GaugeMetricFamily("jobs_queue_depth", "Queued jobs by type.", labels=["type"])
    oldest = GaugeMetricFamily("jobs_oldest_queued_seconds",
                               "Age of the oldest queued job by type.", labels=["type"])
    for row in stats.counts:
        active.add_metric([row["type"], row["status"]], row["jobs"])
        if row["status"] == "queued":
            depth.add_metric([row["type"]], row["jobs"])
            oldest.add_metric([row["type"]], row["oldest_s"])
    durations = GaugeMetricFamily(
        "jobs_recent_step_duration_seconds",
        "Step durations of successful step runs in the last hour, by quantile.",
        labels=["type", "step", "quantile"])
    for row in stats.steps:
        for quantile, column in (("0.5", "p50_ms"), ("0.95", "p95_ms")):
            durations.add_metric([row["type"], row["step"], quantile], row[column] / 1000)
    paused = GaugeMetricFamily(
        "jobs_type_paused", "1 while an operator has paused the job type (its queued jobs "
        "are held on purpose), else 0.", labels=["type"])
    for job_type in JobType:
        paused.add_metric([job_type.value], int(job_type.value in stats.paused_types))
    yield from (active, depth, oldest, durations, paused)
    yield GaugeMetricFamily(
        "jobs_workers_live", "Workers whose heartbeat is younger than 30 s "
        "(WORKER_STALLED_AFTER_S's default; the wait estimate counts them alike).",
        value=stats.live_workers)
    yield GaugeMetricFamily(
        "jobs_db_connections", "Client connections to the PostgreSQL server, every "
        "database and role (pg_stat_activity).", value=stats.connections)
    yield GaugeMetricFamily(
        "jobs_db_max_connections", "The PostgreSQL server's max_connections.",
        value=stats.max_connections)


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # every gunicorn process's samples
    else:
        for instrument in (HTTP_LATENCY, *job_metrics.INSTRUMENTS, *live_metrics.INSTRUMENTS):
            registry.register(instrument)
    registry.register(JobTableCollector())
    return registry


@bp.get("/metrics")
def metrics() -> Response:
    # content_type, not mimetype: Flask would add a second "; charset=utf-8".
    return Response(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """One request's latency (webapp.hooks.around_request calls it for every request)."""
    key = (method if method in _METHODS else "other", route, status)
    latency = _latency_by_labels.get(key)
    if latency is None:  # labels() takes a lock and converts each value: once per key
        latency = _latency_by_labels[key] = HTTP_LATENCY.labels(*key[:2], str(status))
    latency.observe(seconds)
