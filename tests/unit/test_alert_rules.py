"""ops/prometheus/alerts.yml: valid for Prometheus (`promtool check rules`), its unit
tests pass (`promtool test rules ops/prometheus/alerts_test.yml`), every metric it reads
is one the code exports, and every rule says how bad it is and where its runbook is."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.unit.prometheus_support import PROJECT, promtool, unknown

RULES = PROJECT / "ops" / "prometheus" / "alerts.yml"
RULE_TESTS = PROJECT / "ops" / "prometheus" / "alerts_test.yml"
OPERATIONS = PROJECT / "docs" / "operations.md"
SEVERITIES = {"critical", "warning"}


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_rules() -> None:
    promtool("check", "rules", str(RULES.relative_to(PROJECT)))


def test_the_rules_pass_their_unit_tests() -> None:
    promtool("test", "rules", str(RULE_TESTS.relative_to(PROJECT)))


def test_every_alert_is_unit_tested() -> None:
    tested = {case["alertname"] for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
              for case in test.get("alert_rule_test", ()) if case["exp_alerts"]}
    assert {rule["alert"] for rule in rules()} <= tested


def test_every_metric_the_rules_read_is_one_the_code_exports() -> None:
    assert not unknown(rule["expr"] for rule in rules()), (
        "alerts.yml reads metrics no code registers (renamed?)")


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings: lower case, punctuation dropped, spaces to -."""
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            for heading in re.findall(r"^#+ (.+)$", markdown, re.MULTILINE)}


def test_every_alert_waits_says_how_bad_and_links_its_runbook() -> None:
    anchors = _anchors(OPERATIONS.read_text())
    for rule in rules():
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        path, _, anchor = annotations["runbook"].partition("#")
        assert (PROJECT / path).is_file(), name
        assert anchor in anchors, f"{name}: no heading #{anchor} in {path}"
