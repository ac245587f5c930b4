"""GET /metrics: Prometheus text. HTTP latency is measured in every gunicorn process
(multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set, as ops/gunicorn.conf.py does);
job counts, queue depth and step durations are read from the jobs table at scrape time,
so every web host reports the same truth without any worker exporting anything.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from queue_jobs import store
from webapp.context import db_pool

bp = Blueprint("metrics", __name__)

HTTP_LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency by route and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))


class JobTableCollector(Collector):
    """Jobs by type and status, queue depth and recent step durations, from PostgreSQL."""

    def collect(self) -> Iterator[Metric]:
        with db_pool().connection() as conn:
            counts = store.job_counts(conn)
            steps = store.recent_step_stats(conn)
        jobs = GaugeMetricFamily("jobs", "Jobs in the table by type and status.",
                                 labels=["type", "status"])
        depth = GaugeMetricFamily("jobs_queue_depth", "Queued jobs by type.", labels=["type"])
        for row in counts:
            jobs.add_metric([row["type"], row["status"]], row["jobs"])
            if row["status"] == "queued":
                depth.add_metric([row["type"]], row["jobs"])
        durations = GaugeMetricFamily(
            "jobs_step_duration_seconds",
            "Step durations of jobs that succeeded in the last hour, by quantile.",
            labels=["type", "step", "quantile"])
        for row in steps:
            for quantile, column in (("0.5", "p50_ms"), ("0.95", "p95_ms")):
                durations.add_metric([row["type"], row["step"], quantile], row[column] / 1000)
        yield from (jobs, depth, durations)


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # every gunicorn process's samples
    else:
        registry.register(HTTP_LATENCY)
    registry.register(JobTableCollector())
    return registry


@bp.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(_registry()), mimetype=CONTENT_TYPE_LATEST)


def init_metrics(app: Flask) -> None:
    @app.before_request
    def started() -> None:
        request.environ["metrics.started"] = time.perf_counter()

    @app.after_request
    def observe(response: Response) -> Response:
        started_at = request.environ.get("metrics.started")
        if started_at is not None:
            # The route pattern, not the path: ids must not explode the label set.
            route = request.url_rule.rule if request.url_rule else "unmatched"
            HTTP_LATENCY.labels(request.method, route, str(response.status_code)).observe(
                time.perf_counter() - started_at)
        return response
