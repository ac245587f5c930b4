"""Build ops/grafana/job-service.json, a Grafana dashboard, from ops/dashboards/*.sql.

    .venv/bin/python ops/grafana/build_dashboard.py          # rewrite the JSON
    .venv/bin/python ops/grafana/build_dashboard.py --check  # exit 1 if it is stale

One panel per dashboard file (queue_jobs.observability.dashboards reads their headers),
in the files' declared order (as the /ops page shows them), each running the file's SQL as
is through a PostgreSQL data source chosen at import (`DS_POSTGRES`): `table` files become
table panels, `time-series` files timeseries panels (format time_series: the first column
is `time`), `bars` files bar charts showing only the listed value columns, the `summary`
file a full-width stat panel of its listed columns. Each declared column gets its name for
people and its unit; `scale: log` gives a log axis. The output is deterministic (sorted
keys, ids 1..n) so that a test can tell when the committed JSON no longer matches the SQL
files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[2]

from queue_jobs.observability.dashboards import Dashboard, dashboards  # noqa: E402

OUTPUT = Path(__file__).resolve().parent / "job-service.json"
REBUILD = ".venv/bin/python ops/grafana/build_dashboard.py"
DATASOURCE = {"type": "grafana-postgresql-datasource", "uid": "${DS_POSTGRES}"}
PANEL_TYPES = {"table": "table", "time-series": "timeseries", "bars": "barchart",
               "summary": "stat"}
TARGET_FORMATS = {"table": "table", "time-series": "time_series", "bars": "table",
                  "summary": "table"}
# Grafana's unit ids for the units a dashboard file declares.
GRAFANA_UNITS = {"percent": "percentunit", "seconds": "s", "ms": "ms", "ago": "s",
                 "time": "dateTimeAsIso"}
PANEL_WIDTH, PANEL_HEIGHT, GRID_COLUMNS = 12, 8, 24
SUMMARY_HEIGHT = 4
SHOWN = {"legend": False, "tooltip": False, "viz": False}
HIDDEN = {"legend": True, "tooltip": True, "viz": True}


def build() -> dict[str, Any]:
    """The dashboard JSON model for the dashboard files as they are now."""
    panels = []
    x = y = 0
    for number, dash in enumerate(dashboards(), start=1):
        # The summary spans the row; the others fill two columns, left to right.
        width, height = ((GRID_COLUMNS, SUMMARY_HEIGHT) if dash.chart == "summary"
                         else (PANEL_WIDTH, PANEL_HEIGHT))
        if x + width > GRID_COLUMNS:
            x, y = 0, y + PANEL_HEIGHT
        panels.append(_panel(number, dash, {"h": height, "w": width, "x": x, "y": y}))
        x += width
        if x >= GRID_COLUMNS:
            x, y = 0, y + height
    return {
        "__elements": {},
        "__inputs": [{
            "name": "DS_POSTGRES",
            "label": "PostgreSQL",
            "description": "The job service database (a read-only role is enough).",
            "type": "datasource",
            "pluginId": "grafana-postgresql-datasource",
            "pluginName": "PostgreSQL",
        }],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.4.0"},
            {"type": "datasource", "id": "grafana-postgresql-datasource",
             "name": "PostgreSQL", "version": "1.0.0"},
            *({"type": "panel", "id": kind, "name": name, "version": ""}
              for kind, name in (("barchart", "Bar chart"), ("stat", "Stat"),
                                 ("table", "Table"), ("timeseries", "Time series"))
              if any(panel["type"] == kind for panel in panels)),
        ],
        "annotations": {"list": []},
        "description": "The job service's ops dashboards, built from ops/dashboards/*.sql by "
                       "ops/grafana/build_dashboard.py. The queries ignore the time picker: "
                       "each covers the window its title names.",
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 0,
        "id": None,
        "links": [],
        "panels": panels,
        "refresh": "10s",
        "schemaVersion": 39,
        "tags": ["job-service", "postgresql"],
        "templating": {"list": []},
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {"refresh_intervals": ["10s", "30s", "1m", "5m", "15m"]},
        "timezone": "browser",
        "title": "Job service",
        "uid": "job-service",
        "version": 1,
        "weekStart": "",
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _panel(number: int, dash: Dashboard, grid: dict[str, int]) -> dict[str, Any]:
    panel: dict[str, Any] = {
        "datasource": dict(DATASOURCE),
        "description": dash.description,
        "fieldConfig": {"defaults": _field_defaults(dash.chart, dash.scale),
                        "overrides": _column_overrides(dash) + _series_overrides(dash)},
        "gridPos": grid,
        "id": number,
        "options": _options(dash),
        "targets": [{
            "datasource": dict(DATASOURCE),
            "editorMode": "code",
            "format": TARGET_FORMATS[dash.chart],
            "rawQuery": True,
            "rawSql": dash.sql,
            "refId": "A",
        }],
        "title": dash.title,
        "type": PANEL_TYPES[dash.chart],
    }
    return panel


def _field_defaults(chart: str, scale: str) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "color": {"mode": "thresholds" if chart in ("table", "summary")
                  else "palette-classic"},
        "mappings": [],
        "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
    }
    if chart == "summary":
        return defaults
    if chart == "table":
        defaults["custom"] = {"align": "auto", "cellOptions": {"type": "auto"},
                              "inspect": False}
    elif chart == "time-series":
        defaults["custom"] = {"drawStyle": "line", "fillOpacity": 10, "hideFrom": SHOWN,
                              "lineWidth": 1, "showPoints": "never", "spanNulls": False,
                              "stacking": {"group": "A", "mode": "none"}}
        defaults["min"] = 0
    else:
        defaults["custom"] = {"fillOpacity": 80, "gradientMode": "none", "hideFrom": SHOWN,
                              "lineWidth": 1}
        defaults["min"] = 0
    if scale == "log":  # a log axis has no 0
        defaults["custom"]["scaleDistribution"] = {"log": 10, "type": "log"}
        del defaults["min"]
    return defaults


def _column_overrides(dash: Dashboard) -> list[dict[str, Any]]:
    """The declared columns' names for people and their units."""
    overrides = []
    for name, column in dash.columns.items():
        properties: list[dict[str, Any]] = [{"id": "displayName", "value": column.label}]
        if column.unit is not None:
            properties.append({"id": "unit", "value": GRAFANA_UNITS[column.unit]})
        overrides.append({"matcher": {"id": "byName", "options": name},
                          "properties": properties})
    return overrides


def _series_overrides(dash: Dashboard) -> list[dict[str, Any]]:
    """Hide every numeric column, then show the listed ones again (later overrides win):
    a chart draws the header's value columns, whatever else the query returns. (A stat
    panel shows the listed ones through its reduceOptions.)"""
    series = dash.series
    if not series or dash.chart == "summary":
        return []
    return [
        {"matcher": {"id": "byType", "options": "number"},
         "properties": [{"id": "custom.hideFrom", "value": HIDDEN}]},
        {"matcher": {"id": "byNames", "options": {"mode": "include", "names": list(series)}},
         "properties": [{"id": "custom.hideFrom", "value": SHOWN}]},
    ]


def _options(dash: Dashboard) -> dict[str, Any]:
    chart = dash.chart
    legend = {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True}
    tooltip = {"mode": "multi", "sort": "none"}
    if chart == "summary":
        fields = "/^(" + "|".join(dash.series) + ")$/"
        return {"colorMode": "none", "graphMode": "none", "justifyMode": "auto",
                "orientation": "horizontal", "textMode": "value_and_name",
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": fields,
                                  "values": False}}
    if chart == "table":
        return {"cellHeight": "sm", "showHeader": True,
                "footer": {"countRows": False, "fields": "", "reducer": ["sum"],
                           "show": False}}
    if chart == "time-series":
        return {"legend": legend, "tooltip": tooltip}
    return {"barRadius": 0, "barWidth": 0.9, "fullHighlight": False, "groupWidth": 0.7,
            "legend": legend, "orientation": "auto", "showValue": "auto",
            "stacking": "none", "tooltip": tooltip, "xField": "label",
            "xTickLabelRotation": -30,
            "xTickLabelSpacing": 0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build ops/grafana/job-service.json.")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the committed JSON differs from the SQL files")
    args = parser.parse_args(argv)
    wanted = render()
    if args.check:
        if not OUTPUT.exists():
            print(f"{OUTPUT.relative_to(PROJECT_DIR)} is missing. Build it with: {REBUILD}",
                  file=sys.stderr)
            return 1
        if OUTPUT.read_text() != wanted:
            print(f"{OUTPUT.relative_to(PROJECT_DIR)} is stale: ops/dashboards/*.sql changed "
                  f"since it was built. Rebuild it with: {REBUILD}", file=sys.stderr)
            return 1
        print(f"{OUTPUT.relative_to(PROJECT_DIR)} is up to date")
        return 0
    OUTPUT.write_text(wanted)
    print(f"wrote {OUTPUT.relative_to(PROJECT_DIR)} ({len(dashboards())} panels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
