"""The metric names the service exports, and the ones a PromQL expression reads, so that
the alert rules (ops/prometheus/alerts.yml) and the Grafana dashboard on the metrics
(ops/grafana/job-service-metrics.json) can be held to names the code registers: a renamed
metric fails their tests instead of silently never firing or drawing."""

from __future__ import annotations

import re
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from queue_jobs.observability import job_metrics, live_metrics
from queue_jobs.services.monitoring import ScrapeStats
from queue_jobs.worker.health import WorkerState, WorkerStateCollector
from webapp.views.metrics import HTTP_LATENCY, scrape_families

# The series names each kind of family is exposed as (text format 0.0.4).
_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum"),
             "summary": ("", "_count", "_sum"), "info": ("_info",)}
# Words of PromQL that are not metric names: functions, aggregations, operators.
PROMQL_WORDS = frozenset({
    "sum", "min", "max", "avg", "count", "stddev", "topk", "bottomk", "quantile",
    "rate", "irate", "increase", "delta", "idelta", "deriv", "absent", "absent_over_time",
    "histogram_quantile", "clamp_min", "clamp_max", "scalar", "vector", "time", "abs",
    "avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "last_over_time",
    "label_replace", "sort", "sort_desc", "and", "or", "unless", "bool", "offset",
    "group_left", "group_right", "inf", "nan"})


def exported() -> set[str]:
    """Every series name the API's and the workers' /metrics can carry."""
    families: list[Metric] = [
        *HTTP_LATENCY.describe(),
        *(family for instrument in (*job_metrics.INSTRUMENTS, *live_metrics.INSTRUMENTS)
          for family in instrument.describe()),
        *scrape_families(ScrapeStats(counts=[], steps=[], live_workers=0, connections=0,
                                     max_connections=0)),
        *WorkerStateCollector(lambda: WorkerState(None, None)).describe(),
    ]
    return {family.name + suffix for family in families for suffix in _SUFFIXES[family.type]}


def read_by(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (a small lexer, enough for our rules and
    panels: label matchers, strings, ranges, grouping labels and Grafana's $variables are
    not names)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', " ", expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\$\{?\w+\}?", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", text)
    words = set(re.findall(r"(?<![\w.])[A-Za-z_:][\w:]*", text))
    return words - PROMQL_WORDS


def unknown(exprs: Iterable[str]) -> dict[str, set[str]]:
    """expression -> the names it reads that no code exports (empty: all known)."""
    names = exported()
    return {expr: read_by(expr) - names for expr in exprs if read_by(expr) - names}
