"""The chaos test's judgement (tests.chaos.verdict), on made-up measurements."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.chaos.load import ANALYSIS, CONTENT, Answer
from tests.chaos.verdict import (
    Facts,
    Row,
    cut_by_web_kill,
    during,
    incomplete_reason,
    judge,
    passed,
    table,
    unexplained_lost_runs,
)

ANALYSIS_RESULT = {"success": True, "organizationId": "o", "analysis": {"businessName": "A"},
                   "scenarios": [{"imageUrl": "/i/1"}, {"imageUrl": "/i/2"}]}
CONTENT_RESULT = {"success": True, "data": {"content": "text", "visuals": [{"imageUrl": "/i"}]},
                  "savedPost": {"id": "p"}}


def _clean(**changes: Any) -> Facts:
    """A run where everything held: 2 SIGKILLs found 3 runs, all recovered."""
    facts = Facts(plan="test", jobs_with_201=10, lost_runs={"a": 2, "b": 1},
                  in_flight_at_death=Counter({"a": 2, "b": 1}), handed_back=1,
                  received_calls=66, answered_calls=64, delivered_calls=63, clean_calls=60,
                  recorded_calls=63,
                  answers=[Answer("status", 10.0, 2.6, 503), Answer("status", 25.0, 0.01, 200)],
                  outages=[(9.0, 21.0)], web_kills=[30.0])
    for key, value in changes.items():
        setattr(facts, key, value)
    return facts


def _row(rows: list[Row], figure: str) -> Row:
    [row] = [r for r in rows if r.figure.startswith(figure)]
    return row


def test_a_run_where_everything_held_passes() -> None:
    rows = judge(_clean())
    assert passed(rows), table(rows)
    assert _row(rows, "wasted LLM calls").value == "4"
    assert _row(rows, "wasted LLM calls").limit.startswith("<= 4 ")
    assert _row(rows, "requests / 503s while PostgreSQL was down").value == "1 / 1"


def test_each_miss_fails_its_row_and_the_run() -> None:
    misses: dict[str, dict[str, Any]] = {
        "jobs with a 201 not": {"incomplete": {"j": "failed WORKER_LOST"}},
        "jobs stuck": {"stuck": 1},
        "worker processes that exited": {"unexpected_exits": ["worker 1 at 90s, code 1"]},
        "lost runs charged to a live worker": {"lost_runs": {"a": 2, "b": 1, "c": 1}},
        "wasted LLM calls": {"answered_calls": 65},
        "LLM calls recorded": {"recorded_calls": 64},
        "slowest 503": {"answers": [Answer("create", 10.0, 3.2, 503)]},
        "5xx answers other than 503": {"answers": [Answer("status", 40.0, 0.1, 500)]},
        "requests without an answer": {"answers": [Answer("status", 40.0, 15.0, None,
                                                          "timeout")]},
        "connections cut otherwise": {"answers": [Answer("status", 40.0, 0.1, None,
                                                         "connection")]},
        "visitors stopped": {"visitor_errors": ["visitor 3: KeyError('jobId')"]},
    }
    for figure, changes in misses.items():
        rows = judge(_clean(**changes))
        assert _row(rows, figure).passed is False, (figure, table(rows))
        assert not passed(rows)
        assert sum(1 for row in rows if row.passed is False) == 1, (figure, table(rows))


def test_lost_runs_are_explained_only_by_worker_deaths_that_found_the_job_running() -> None:
    assert unexplained_lost_runs({"a": 1}, Counter({"a": 1})) == 0
    assert unexplained_lost_runs({"a": 2}, Counter({"a": 1})) == 1
    assert unexplained_lost_runs({"a": 1}, Counter({"b": 1})) == 1
    assert unexplained_lost_runs({}, Counter({"b": 2})) == 0  # a kill may lose nothing


def test_a_connection_is_cut_by_a_web_kill_while_in_flight_or_just_after() -> None:
    assert cut_by_web_kill(Answer("status", 10.0, 1.0, None, "connection"), [10.5])
    assert cut_by_web_kill(Answer("status", 11.5, 0.0, None, "connection"), [10.0])
    assert not cut_by_web_kill(Answer("status", 13.0, 0.1, None, "connection"), [10.0])
    assert not cut_by_web_kill(Answer("status", 5.0, 0.1, None, "connection"), [10.0])


def test_a_request_counts_as_during_the_outage_if_it_overlaps_it() -> None:
    assert during(Answer("status", 8.0, 2.0, 503), [(9.0, 20.0)])
    assert during(Answer("status", 19.0, 2.0, 200), [(9.0, 20.0)])
    assert not during(Answer("status", 21.0, 0.1, 200), [(9.0, 20.0)])


def test_a_complete_result_has_every_part() -> None:
    def done(result: dict[str, Any]) -> dict[str, Any]:
        return {"status": "succeeded", "result": result}

    assert incomplete_reason(ANALYSIS, done(ANALYSIS_RESULT)) is None
    assert incomplete_reason(CONTENT, done(CONTENT_RESULT)) is None
    assert incomplete_reason(ANALYSIS, None) == "never answered"
    assert incomplete_reason(ANALYSIS, {"status": "failed", "errorCode": "WORKER_LOST"}) \
        == "failed WORKER_LOST"
    assert incomplete_reason(ANALYSIS, {"status": "running"}) == "running"
    no_image = {**ANALYSIS_RESULT, "scenarios": [{"imageUrl": "/i/1"}, {"imageUrl": None}]}
    assert incomplete_reason(ANALYSIS, done(no_image)) == "a scenario without its image"
    unsaved = {**CONTENT_RESULT, "savedPost": None}
    assert incomplete_reason(CONTENT, done(unsaved)) == "post not saved"
    no_visual = {**CONTENT_RESULT, "data": {"content": "text", "visuals": []}}
    assert incomplete_reason(CONTENT, done(no_visual)) == "no content or no visual"


def test_the_table_is_markdown_with_a_verdict_per_limited_row() -> None:
    text = table([Row("a", "1", "0", False), Row("b", "x", "", None)])
    assert text.splitlines() == ["| figure | value | limit | pass |", "|---|---|---|---|",
                                 "| a | 1 | 0 | FAIL |", "| b | x |  |  |"]


def test_recorded_usage_may_miss_only_answers_delivered_just_before_a_kill() -> None:
    # 63 delivered; 2 of them arrived within KILL_RACE_S before a SIGKILL.
    racing = {"delivered_just_before_kills": 2}
    assert _row(judge(_clean(recorded_calls=61, **racing)), "LLM calls recorded").passed
    assert _row(judge(_clean(recorded_calls=60, **racing)), "LLM calls recorded").passed is False
    assert _row(judge(_clean(recorded_calls=62)), "LLM calls recorded").passed is False
    assert _row(judge(_clean(recorded_calls=64, **racing)), "LLM calls recorded").passed is False
