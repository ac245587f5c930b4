"""What the tests of the alert rules (ops/prometheus/alerts.yml) and of the Grafana
dashboard on the metrics (ops/grafana/job-service-metrics.json) share: the metric names
the service exports and the ones a PromQL expression reads, so both are held to names the
code registers (a renamed metric fails their tests instead of silently never firing or
drawing), and Debian's promtool, run from the project directory."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest
from prometheus_client.metrics_core import Metric

from queue_jobs.observability import job_metrics, live_metrics
from queue_jobs.services.monitoring import ScrapeStats
from queue_jobs.worker.health import WorkerState, WorkerStateCollector
from webapp.views.metrics import HTTP_LATENCY, scrape_families

PROJECT = Path(__file__).resolve().parents[2]
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


def promtool(*args: str) -> None:
    """Runs Debian's promtool (package prometheus) in the project directory; fails the test
    with its output."""
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: run `make deps` (make test does it; Debian's "
                    "prometheus package ships it)")
    done = subprocess.run([tool, *args], cwd=PROJECT, capture_output=True, text=True,
                          timeout=60, check=False)
    if done.returncode != 0:
        pytest.fail(f"promtool {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
