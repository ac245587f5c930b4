"""The ops dashboards: one commented SELECT per file in ops/dashboards/.

Each file starts with header lines that the /ops page and the Grafana builder read:

    -- title: Jobs per minute, last hour
    -- chart: table | time-series <value columns> | bars <value columns> | summary <columns>
    -- order: 30
    -- scale: log
    -- column: p50_ms | Median | ms

`title` and `chart` come first, in that order. `time-series`: the first column is named
`time`; the listed numeric columns are the lines. `bars`: one bar group per row, labelled
by its `label` column (the first column); the listed numeric columns are the bars.
`summary`: one row, whose listed columns the page shows as its summary line, above every
panel (a stat panel in Grafana). `order` (required, unique) places the panel: the page and
Grafana show them by it, in the order an on-call person asks, whatever the file names.
`scale: log` draws a chart's values on a log scale (durations: one outlier must not
flatten every other bar). Each `column` line names a column for people and gives its unit
(UNITS); a column without one is shown by its name in words (`running_jobs`: "Running
jobs"). The comment lines after the header say what the query shows and why it is cheap;
the rest is the statement, run as is.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from queue_jobs.db.sql_files import shipped_dir

DASHBOARD_DIR = shipped_dir("ops/dashboards", "queue_jobs.observability.dashboard_sql")
CHART_KINDS = ("table", "time-series", "bars", "summary")
SCALES = ("linear", "log")
# What a column's values are, for the page's formatting and Grafana's units: a fraction
# shown as a percentage, a duration in seconds or milliseconds, an age in seconds (shown as
# "4 s ago"), a point in time.
UNITS = ("percent", "seconds", "ms", "ago", "time")
_HEADER = re.compile(r"^-- (title|chart): (.+)$")
_META = re.compile(r"^-- (order|scale|column): (.+)$")


@dataclass(frozen=True)
class Column:
    label: str
    unit: str | None = None  # one of UNITS


@dataclass(frozen=True)
class Dashboard:
    name: str  # file stem, e.g. "queue_depth"
    title: str
    chart: str  # one of CHART_KINDS
    series: tuple[str, ...]  # value columns drawn by the chart (none for a table)
    description: str  # the comment lines after the header, joined
    sql: str  # the whole file: PostgreSQL ignores the comments
    order: int = 0
    scale: str = "linear"  # one of SCALES
    columns: dict[str, Column] = field(default_factory=dict)  # the declared ones

    def column(self, name: str) -> Column:
        """How the page and Grafana name and format a result column."""
        return self.columns.get(name) or Column(name.replace("_", " ").capitalize())


@cache
def dashboards() -> tuple[Dashboard, ...]:
    boards = sorted((_parse(path) for path in DASHBOARD_DIR.glob("*.sql")),
                    key=lambda d: d.order)
    for before, after in itertools.pairwise(boards):
        if before.order == after.order:
            raise ValueError(f"{before.name}.sql and {after.name}.sql have the same order "
                             f"{before.order}")
    return tuple(boards)


def by_name(name: str) -> Dashboard | None:
    return next((d for d in dashboards() if d.name == name), None)


def _parse(path: Path) -> Dashboard:
    text = path.read_text()
    lines = text.splitlines()
    header = {}
    for line in lines[:2]:
        match = _HEADER.match(line)
        if not match:
            raise ValueError(f"{path.name}: starts with '-- title:' and '-- chart:' lines")
        header[match.group(1)] = match.group(2).strip()
    kind, *rest = header["chart"].split(maxsplit=1)
    if kind not in CHART_KINDS:
        raise ValueError(f"{path.name}: chart {kind!r} is not one of {CHART_KINDS}")
    series = tuple(s.strip() for s in rest[0].split(",")) if rest else ()
    if (kind == "table") != (not series):
        raise ValueError(f"{path.name}: a {kind} names {'no' if kind == 'table' else 'its'} "
                         "value columns")
    order: int | None = None
    scale = "linear"
    columns: dict[str, Column] = {}
    at = 2
    while at < len(lines) and (match := _META.match(lines[at])):
        key, value = match.group(1), match.group(2).strip()
        if key == "order":
            if not re.fullmatch(r"\d+", value):
                raise ValueError(f"{path.name}: order {value!r} is not a whole number")
            order = int(value)
        elif key == "scale":
            if value not in SCALES:
                raise ValueError(f"{path.name}: scale {value!r} is not one of {SCALES}")
            scale = value
        else:
            columns.update([_column(path, value)])
        at += 1
    if order is None:
        raise ValueError(f"{path.name}: no '-- order: N' line after the chart line")
    description = []
    for line in lines[at:]:
        if not line.startswith("--"):
            break
        description.append(line.removeprefix("--").strip())
    return Dashboard(path.stem, header["title"], kind, series, " ".join(description), text,
                     order, scale, columns)


def _column(path: Path, value: str) -> tuple[str, Column]:
    """`name | Label` or `name | Label | unit`."""
    parts = [part.strip() for part in value.split("|")]
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"{path.name}: column {value!r} is not 'name | Label [| unit]'")
    unit = parts[2] if len(parts) == 3 else None
    if unit is not None and unit not in UNITS:
        raise ValueError(f"{path.name}: column {parts[0]}: unit {unit!r} is not one of {UNITS}")
    return parts[0], Column(parts[1], unit)
