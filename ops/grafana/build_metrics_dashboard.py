"""Build ops/grafana/job-service-metrics.json, a Grafana dashboard on the Prometheus
metrics the service exports (the API's /metrics and each worker's), beside the SQL one
that build_dashboard.py makes from ops/dashboards/*.sql.

    .venv/bin/python ops/grafana/build_metrics_dashboard.py          # rewrite the JSON
    .venv/bin/python ops/grafana/build_metrics_dashboard.py --check  # exit 1 if it is stale

The panels are declared below (PANELS), in the order an on-call person asks: is the API
answering, are jobs flowing, where does the time go, what does the LLM cost and refuse,
is there capacity. Every query goes through a Prometheus data source chosen at import
(`DS_PROMETHEUS`). Counters are summed over instances; the gauges the API reads from
PostgreSQL at scrape time are the same on every web host, so they take `max`. Duration
axes are logarithmic (one slow outlier must not flatten the rest) and series that belong
together (p50/p95/p99, 503 and other 5xx) get fixed, distinct colours. The output is
deterministic so that tests/unit/test_grafana_metrics_dashboard.py can tell when the
committed JSON is stale, and checks every expression's metric names against the code.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parent / "job-service-metrics.json"
REBUILD = ".venv/bin/python ops/grafana/build_metrics_dashboard.py"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
PANEL_WIDTH, PANEL_HEIGHT, GRID_COLUMNS = 12, 8, 24
RATE = "[$__rate_interval]"
EVENTS_ROUTE = "/api/v1/jobs/<job_id>/events"
# Quantiles and error kinds keep their colour whatever else a panel shows.
QUANTILE_COLOURS = {"p50": "green", "p95": "orange", "p99": "red"}


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    unit: str  # Grafana's unit id: s (a duration: log axis), reqps, opm, short...
    targets: tuple[tuple[str, str], ...]  # (PromQL, legend format)
    colours: dict[str, str] = field(default_factory=dict)  # legend regex -> colour
    stacked: bool = False

    @property
    def log_scale(self) -> bool:
        return self.unit == "s"


def _quantiles(metric: str, by: str, legend: str, selector: str = "",
               quantiles: tuple[str, ...] = ("0.5", "0.95", "0.99"),
               ) -> tuple[tuple[str, str], ...]:
    """histogram_quantile targets of `metric`'s buckets, one per quantile."""
    return tuple(
        (f"histogram_quantile({q}, sum by (le, {by}) "
         f"(rate({metric}_bucket{selector}{RATE})))",
         f"{legend} p{round(float(q) * 100)}")
        for q in quantiles)


def _per_minute(metric: str, by: str, selector: str = "") -> str:
    return f"sum by ({by}) (rate({metric}{selector}{RATE})) * 60"


PANELS: tuple[Panel, ...] = (
    Panel("API requests per second by route",
          "Every request the API answered, by route pattern (ids never become labels), "
          "summed over web hosts and gunicorn processes.",
          "reqps",
          ((f"sum by (route) (rate(http_request_duration_seconds_count{RATE}))",
            "{{route}}"),)),
    Panel("API latency by route (p50, p95, p99)",
          "From http_request_duration_seconds. An event stream's latency is the time to "
          "its first byte, not its life. Log scale.",
          "s",
          _quantiles("http_request_duration_seconds", "route", "{{route}}",
                     f'{{route!="{EVENTS_ROUTE}"}}'),
          colours={f" {q}$": colour for q, colour in QUANTILE_COLOURS.items()}),
    Panel("API 503s and other 5xx",
          "503: PostgreSQL unreachable or no pooled connection in time (alert JobsApi503s); "
          "event streams refused because a process holds LIVE_STREAMS_PER_PROCESS are "
          "shown apart. Any other 5xx is a bug (alert JobsApiServerErrors).",
          "reqps",
          ((f'sum by (route) (rate(http_request_duration_seconds_count{{status="503", '
            f'route!="{EVENTS_ROUTE}"}}{RATE}))', "503 {{route}}"),
           (f'sum(rate(http_request_duration_seconds_count{{status="503", '
            f'route="{EVENTS_ROUTE}"}}{RATE}))', "503 event streams refused"),
           (f'sum by (route, status) (rate(http_request_duration_seconds_count'
            f'{{status=~"5..", status!="503"}}{RATE}))', "{{status}} {{route}}")),
          colours={"^503 event": "yellow", "^503 /": "orange", "^5(?!03)": "red"}),
    Panel("Jobs created and finished per minute",
          "Created by type (API); finished by outcome: succeeded or the errorCode "
          "(workers; cancels of queued jobs on the API).",
          "opm",
          ((_per_minute("jobs_created_total", "type"), "created {{type}}"),
           (_per_minute("jobs_finished_total", "outcome"), "finished {{outcome}}")),
          colours={"^finished succeeded$": "green"}),
    Panel("Failures per minute by errorCode",
          "Finished jobs that failed, by errorCode and type (alert JobsFailureSpike).",
          "opm",
          ((_per_minute("jobs_finished_total", "outcome, type",
                        '{outcome!="succeeded"}'), "{{outcome}} {{type}}"),),
          stacked=True),
    Panel("Step durations (p50, p95)",
          "Successful step runs by type and step, from jobs_step_duration_seconds on the "
          "workers. Log scale.",
          "s",
          _quantiles("jobs_step_duration_seconds", "type, step", "{{type}} {{step}}",
                     '{outcome="succeeded"}', ("0.5", "0.95"))),
    Panel("Queue depth",
          "Queued and running jobs by type, read from PostgreSQL at scrape time.",
          "short",
          (("max by (type, status) (jobs_active)", "{{status}} {{type}}"),)),
    Panel("Oldest queued job",
          "How long the oldest queued job of each type has waited (alert "
          "JobsQueuedTooLong past 10 minutes). Log scale.",
          "s",
          (("max by (type) (jobs_oldest_queued_seconds)", "{{type}}"),)),
    Panel("Live workers",
          "Workers whose heartbeat is younger than 30 s, read from PostgreSQL at scrape "
          "time (alert JobsNoLiveWorker at 0).",
          "short",
          (("max(jobs_workers_live)", "live workers"),),
          colours={"^live workers$": "green"}),
    Panel("Database connections vs max_connections",
          "The PostgreSQL server's client connections, every database and role, against "
          "max_connections (alerts at 80 % and 95 %).",
          "short",
          (("max(jobs_db_connections)", "connections"),
           ("max(jobs_db_max_connections)", "max_connections")),
          colours={"^connections$": "blue", "^max_connections$": "red"}),
    Panel("LLM calls, re-asks and failed calls per minute",
          "Answered calls by model; re-asks of unusable answers by reason (alert "
          "LlmReasksClimbing); calls that got no answer by errorCode: LLM_RATE_LIMITED is "
          "a 429 (alert LlmRateLimited).",
          "opm",
          ((_per_minute("llm_calls_total", "model"), "calls {{model}}"),
           (_per_minute("llm_reasks_total", "reason"), "re-asks {{reason}}"),
           (_per_minute("llm_call_errors_total", "model, error_code"),
            "{{error_code}} {{model}}")),
          colours={"^LLM_RATE_LIMITED": "red", "^LLM_TIMEOUT": "orange"}),
    Panel("LLM tokens per minute",
          "Tokens by model and direction (input, output): what the provider bills.",
          "short",
          ((_per_minute("llm_tokens_total", "model, direction"), "{{direction}} {{model}}"),),
          stacked=True),
    Panel("Live status streams open",
          "Event streams open, summed over web hosts and processes; each process refuses "
          "streams past LIVE_STREAMS_PER_PROCESS (10,000).",
          "short",
          (("sum(live_streams_open)", "streams open"),)),
    Panel("Status polls answered, from memory or database",
          "Status polls by source: memory (no database round trip) or database.",
          "reqps",
          ((f"sum by (source) (rate(status_answers_total{RATE}))", "{{source}}"),),
          colours={"^memory$": "green", "^database$": "blue"}),
)


def build() -> dict[str, Any]:
    """The dashboard JSON model."""
    return {
        "__elements": {},
        "__inputs": [{
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": "The Prometheus that scrapes the API's and the workers' /metrics.",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.4.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus",
             "version": "1.0.0"},
            {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""},
        ],
        "annotations": {"list": []},
        "description": "The job service's Prometheus metrics, built by "
                       "ops/grafana/build_metrics_dashboard.py.",
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [],
        "panels": [_panel(number, panel) for number, panel in enumerate(PANELS, start=1)],
        "refresh": "30s",
        "schemaVersion": 39,
        "tags": ["job-service", "prometheus"],
        "templating": {"list": []},
        "time": {"from": "now-3h", "to": "now"},
        "timepicker": {"refresh_intervals": ["10s", "30s", "1m", "5m", "15m"]},
        "timezone": "browser",
        "title": "Job service metrics",
        "uid": "job-service-metrics",
        "version": 1,
        "weekStart": "",
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _panel(number: int, panel: Panel) -> dict[str, Any]:
    index = number - 1
    per_row = GRID_COLUMNS // PANEL_WIDTH
    custom: dict[str, Any] = {
        "drawStyle": "line", "fillOpacity": 10 if panel.stacked else 0, "lineWidth": 1,
        "showPoints": "never", "spanNulls": False,
        "hideFrom": {"legend": False, "tooltip": False, "viz": False},
        "stacking": {"group": "A", "mode": "normal" if panel.stacked else "none"},
        "scaleDistribution": {"type": "log", "log": 10} if panel.log_scale
        else {"type": "linear"},
    }
    defaults: dict[str, Any] = {
        "color": {"mode": "palette-classic"}, "custom": custom, "mappings": [],
        "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
        "unit": panel.unit,
    }
    if not panel.log_scale:
        defaults["min"] = 0
    return {
        "datasource": dict(DATASOURCE),
        "description": panel.description,
        "fieldConfig": {"defaults": defaults, "overrides": [
            {"matcher": {"id": "byRegexp", "options": pattern},
             "properties": [{"id": "color",
                             "value": {"fixedColor": colour, "mode": "fixed"}}]}
            for pattern, colour in sorted(panel.colours.items())]},
        "gridPos": {"h": PANEL_HEIGHT, "w": PANEL_WIDTH,
                    "x": (index % per_row) * PANEL_WIDTH,
                    "y": (index // per_row) * PANEL_HEIGHT},
        "id": number,
        "options": {
            "legend": {"calcs": [], "displayMode": "list", "placement": "bottom",
                       "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [{
            "datasource": dict(DATASOURCE),
            "editorMode": "code",
            "expr": expr,
            "legendFormat": legend,
            "range": True,
            "refId": chr(ord("A") + position),
        } for position, (expr, legend) in enumerate(panel.targets)],
        "title": panel.title,
        "type": "timeseries",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=f"Build {OUTPUT.name}.")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the committed JSON differs from what PANELS build")
    wanted, name = render(), f"ops/grafana/{OUTPUT.name}"
    if parser.parse_args(argv).check:
        current = OUTPUT.read_text() if OUTPUT.exists() else None
        state = "up to date" if current == wanted else (
            "missing" if current is None else "stale")
        print(f"{name} is {state}" + ("" if current == wanted else f": {REBUILD}"),
              file=sys.stdout if current == wanted else sys.stderr)
        return 0 if current == wanted else 1
    OUTPUT.write_text(wanted)
    print(f"wrote {name} ({len(PANELS)} panels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
