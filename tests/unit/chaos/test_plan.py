"""The chaos plans keep to the fault model that docs/operations.md describes."""

from __future__ import annotations

import pytest

from tests.chaos.plan import FULL, KILL_WEB, KILL_WORKER, KINDS, PG_OUTAGE, SHORT, TERM_WORKER, Plan

# The shipped WORKER_STALLED_AFTER_S + REAPER_INTERVAL_S: a killed worker's runs are
# re-dispatched at most this long after the kill.
REAPED_WITHIN_S = 30 + 10


@pytest.mark.parametrize("plan", [SHORT, FULL], ids=lambda p: p.name)
def test_every_kind_of_fault_happens_within_the_load(plan: Plan) -> None:
    kinds = [fault.kind for fault in plan.faults]
    assert set(kinds) == set(KINDS)
    assert all(kinds.count(kind) >= 2 for kind in (KILL_WORKER, TERM_WORKER, KILL_WEB))
    times = [fault.at_s for fault in plan.faults]
    assert times == sorted(times) and times[-1] < plan.load_s


@pytest.mark.parametrize("plan", [SHORT, FULL], ids=lambda p: p.name)
def test_the_last_killed_runs_can_be_reaped_and_finished_in_the_drain(plan: Plan) -> None:
    last_kill = max(f.at_s for f in plan.faults if f.kind == KILL_WORKER)
    assert plan.load_s - last_kill + plan.drain_s > REAPED_WITHIN_S + 60
    assert plan.load_s + plan.drain_s + 180 < plan.deadline_s  # start-up, checks, slack


def test_outages_are_as_long_as_the_task_asks() -> None:
    assert 10 <= SHORT.outage_s() <= 15
    assert 30 <= FULL.outage_s() <= 60
    assert [f.kind for f in FULL.faults].count(PG_OUTAGE) == 1
