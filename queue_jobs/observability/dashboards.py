"""The ops dashboards: one commented SELECT per file in ops/dashboards/.

Each file starts with two header lines that the /ops page and the Grafana builder read:

    -- title: Jobs per minute, last hour
    -- chart: table | time-series <value columns> | bars <value columns>

`time-series`: the first column is named `time`; the listed numeric columns are the lines.
`bars`: one bar group per row, labelled by its `label` column (the first column); the
listed numeric columns are the bars. The comment lines after the header say what the query
shows and why it is cheap; the rest is the statement, run as is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from queue_jobs.db.sql_files import shipped_dir

DASHBOARD_DIR = shipped_dir("ops/dashboards", "queue_jobs.observability.dashboard_sql")
CHART_KINDS = ("table", "time-series", "bars")
_HEADER = re.compile(r"^-- (title|chart): (.+)$")


@dataclass(frozen=True)
class Dashboard:
    name: str  # file stem, e.g. "queue_depth"
    title: str
    chart: str  # one of CHART_KINDS
    series: tuple[str, ...]  # value columns drawn by the chart (none for a table)
    description: str  # the comment lines after the header, joined
    sql: str  # the whole file: PostgreSQL ignores the comments


@cache
def dashboards() -> tuple[Dashboard, ...]:
    return tuple(_parse(path) for path in sorted(DASHBOARD_DIR.glob("*.sql")))


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
    description = []
    for line in lines[2:]:
        if not line.startswith("--"):
            break
        description.append(line.removeprefix("--").strip())
    return Dashboard(path.stem, header["title"], kind, series, " ".join(description), text)
