"""ops/grafana/job-service-metrics.json is what build_metrics_dashboard.py builds, well
formed, every expression valid PromQL (promtool) reading only metrics the code exports,
and it shows what an on-call person needs from each of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import scripts
from tests.unit.prometheus_support import PROJECT, promtool, read_by, unknown

BUILDER_PATH = PROJECT / "ops" / "grafana" / "build_metrics_dashboard.py"
COMMITTED = PROJECT / "ops" / "grafana" / "job-service-metrics.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
# What the dashboard must draw (issue: request rate and latency, 503/5xx, jobs, steps,
# LLM calls, tokens, re-asks, 429s, queue, oldest queued, workers, connections, live status).
REQUIRED = {
    "http_request_duration_seconds_count", "http_request_duration_seconds_bucket",
    "jobs_created_total", "jobs_finished_total", "jobs_step_duration_seconds_bucket",
    "llm_calls_total", "llm_tokens_total", "llm_reasks_total", "llm_call_errors_total",
    "jobs_active", "jobs_oldest_queued_seconds", "jobs_workers_live",
    "jobs_db_connections", "jobs_db_max_connections", "live_streams_open",
    "status_answers_total"}


builder = scripts.load(BUILDER_PATH)


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    assert COMMITTED.exists(), f"{COMMITTED} is missing: build it with {builder.REBUILD}"
    model: dict[str, Any] = json.loads(COMMITTED.read_text())
    return model


def exprs(model: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in model["panels"] for target in panel["targets"]]


def test_committed_json_is_what_the_builder_builds() -> None:
    if COMMITTED.read_text() != builder.render():
        pytest.fail(f"{COMMITTED.relative_to(PROJECT)} is stale: its panels changed since "
                    f"it was built. Rebuild it with: {builder.REBUILD}")


def test_panels_are_well_formed(committed: dict[str, Any]) -> None:
    assert committed["uid"] == "job-service-metrics" and committed["id"] is None
    assert [(i["name"], i["type"], i["pluginId"]) for i in committed["__inputs"]] == [
        ("DS_PROMETHEUS", "datasource", "prometheus")]
    panels = committed["panels"]
    assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        title = panel["title"]
        assert panel["type"] == "timeseries" and panel["description"], title
        assert panel["datasource"] == DATASOURCE, title
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & mine, f"{title} overlaps another panel"
        cells |= mine
        targets = panel["targets"]
        assert targets and len({t["refId"] for t in targets}) == len(targets), title
        for target in targets:
            assert target["datasource"] == DATASOURCE and target["legendFormat"], title
        defaults = panel["fieldConfig"]["defaults"]
        scale = defaults["custom"]["scaleDistribution"]["type"]
        # Durations on a log axis: one slow outlier must not flatten every other line.
        assert scale == ("log" if defaults["unit"] == "s" else "linear"), title
        assert defaults["color"]["mode"] == "palette-classic", title


def test_series_that_belong_together_have_distinct_fixed_colours(
        committed: dict[str, Any]) -> None:
    [latency] = [p for p in committed["panels"] if p["title"].startswith("API latency")]
    colours = [o["properties"][0]["value"]["fixedColor"]
               for o in latency["fieldConfig"]["overrides"]]
    assert len(colours) == len(set(colours)) == 3


def test_every_expression_is_valid_promql(committed: dict[str, Any],
                                          tmp_path: Path) -> None:
    """As recording rules (Grafana's $__rate_interval as a plain range): promtool parses
    each expression."""
    records = [{"record": f"dashboard:expr_{n}", "expr": expr.replace("$__rate_interval", "5m")}
               for n, expr in enumerate(exprs(committed))]
    rules = tmp_path / "dashboard_rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    promtool("check", "rules", str(rules))


def test_every_metric_it_reads_is_one_the_code_exports(committed: dict[str, Any]) -> None:
    assert not unknown(exprs(committed)), "the dashboard reads metrics no code registers"


def test_it_draws_every_metric_an_on_call_person_needs(committed: dict[str, Any]) -> None:
    read = set().union(*(read_by(expr) for expr in exprs(committed)))
    assert not REQUIRED - read
