"""What a chaos run must show, judged from what it measured: one row per figure (value,
limit, pass or fail; figures without a limit are context), as a Markdown table.

Pure functions over `Facts`, so the judgement itself is unit-tested
(tests/unit/chaos/test_verdict.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.chaos.load import ANALYSIS, CONTENT, Answer

MAX_503_S = 3.0
# A worker SIGKILLed right after an answer reached it cannot have written that call down: the
# answers delivered this long before each kill (to any worker: an upper bound) may be missing
# from the recorded usage. Long enough for a busy 2-core host to read and record an answer.
KILL_RACE_S = 0.5
# A request cut by a web worker's SIGKILL was in that worker when it died, or went out on a
# kept-alive connection to it just after (before the client saw the connection close).
CUT_BEFORE_S, CUT_AFTER_S = 2.0, 0.5


@dataclass(frozen=True)
class Row:
    figure: str
    value: str
    limit: str
    passed: bool | None  # None: context, no limit

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "FAIL", None: ""}[self.passed]


@dataclass
class Facts:
    """Everything the run measured (run.py gathers it)."""

    plan: str
    faults: list[str] = field(default_factory=list)  # what was injected, in order
    jobs_with_201: int = 0
    incomplete: dict[str, str] = field(default_factory=dict)  # jobId of a 201 -> why not ok
    stuck: int = 0  # jobs (with a 201 or not) still queued or running at the end
    jobs_without_201: int = 0  # created although the client never saw the 201
    unexpected_exits: list[str] = field(default_factory=list)
    lost_runs: dict[str, int] = field(default_factory=dict)  # jobId -> jobs.lost_runs
    # jobId -> deaths of the worker running it (SIGKILLed, or exited by itself)
    in_flight_at_death: Counter[str] = field(default_factory=Counter)
    handed_back: int = 0  # runs a SIGTERMed worker had not finished when it exited
    received_calls: int = 0  # LLM calls the fake server received
    answered_calls: int = 0  # ... answered with success (what a provider bills)
    delivered_calls: int = 0  # ... of those, the answers that reached a live caller
    clean_calls: int = 0  # what the succeeded jobs need, run without faults
    recorded_calls: int = 0  # sum of llm_usage_daily.calls
    worker_kills: list[float] = field(default_factory=list)  # time.monotonic() of each SIGKILL
    # Answers delivered (to any worker) within KILL_RACE_S before a worker's SIGKILL: one
    # that reached the killed process there may have been read but not yet written down.
    delivered_just_before_kills: int = 0
    answers: list[Answer] = field(default_factory=list)
    outages: list[tuple[float, float]] = field(default_factory=list)  # PostgreSQL down
    web_kills: list[float] = field(default_factory=list)
    drain_s: float = 0.0
    visitor_errors: list[str] = field(default_factory=list)


def unexplained_lost_runs(lost_runs: dict[str, int], in_flight_at_death: Counter[str]) -> int:
    """Lost runs beyond the worker deaths that found the job running: runs charged to a
    worker that was alive (its heartbeat only paused, it was draining after SIGTERM, or its
    run failed on a database error and procrastinate finished it)."""
    return sum(max(0, lost - in_flight_at_death[job]) for job, lost in lost_runs.items())


def cut_by_web_kill(answer: Answer, kills: Iterable[float]) -> bool:
    return any(answer.at_s - CUT_BEFORE_S <= kill <= answer.at_s + answer.seconds + CUT_AFTER_S
               for kill in kills)


def during(answer: Answer, windows: Iterable[tuple[float, float]]) -> bool:
    """Sent while PostgreSQL was down, or answered while it was."""
    return any(answer.at_s <= end and answer.at_s + answer.seconds >= start
               for start, end in windows)


def incomplete_reason(job_type: str, document: dict[str, Any] | None) -> str | None:
    """Why a job's last status document is not a success with the whole result; None if it
    is one."""
    if document is None:
        return "never answered"
    if document.get("status") != "succeeded":
        return f"{document.get('status')} {document.get('errorCode') or ''}".strip()
    result = document.get("result") or {}
    if result.get("success") is not True:
        return "result without success"
    if job_type == ANALYSIS:
        scenarios = result.get("scenarios") or []
        if not result.get("organizationId") or not result.get("analysis"):
            return "no organization or analysis"
        if not scenarios or not all(s.get("imageUrl") for s in scenarios):
            return "a scenario without its image"
    elif job_type == CONTENT:
        data = result.get("data") or {}
        if not data.get("content") or len(data.get("visuals") or []) != 1:
            return "no content or no visual"
        if not (result.get("savedPost") or {}).get("id"):
            return "post not saved"
    return None


def image_urls(job_type: str, document: dict[str, Any]) -> list[str]:
    result = document.get("result") or {}
    if job_type == ANALYSIS:
        return [s["imageUrl"] for s in result.get("scenarios") or []]
    return [v["imageUrl"] for v in (result.get("data") or {}).get("visuals") or []]


def judge(facts: Facts) -> list[Row]:
    answers = facts.answers
    down = [a for a in answers if during(a, facts.outages)]
    unavailable = [a for a in answers if a.status == 503]
    slowest_503 = max((a.seconds for a in unavailable), default=0.0)
    other_5xx = Counter(a.status for a in answers
                        if a.status is not None and a.status >= 500 and a.status != 503)
    no_answer = [a for a in answers if a.error is not None]
    timeouts = [a for a in no_answer if a.error == "timeout"]
    uncut = [a for a in no_answer if a.error == "connection"
             and not cut_by_web_kill(a, facts.web_kills)]
    died = sum(facts.in_flight_at_death.values())
    interrupted = died + facts.handed_back
    wasted = facts.answered_calls - facts.clean_calls
    least_recorded = facts.delivered_calls - facts.delivered_just_before_kills
    unexplained = unexplained_lost_runs(facts.lost_runs, facts.in_flight_at_death)
    not_ok = len(facts.incomplete)

    def zero(figure: str, value: int, detail: str = "") -> Row:
        return Row(figure, f"{value}{detail}", "0", value == 0)

    return [
        Row("faults injected", "; ".join(facts.faults) or "none", "", None),
        Row("jobs created (201)", str(facts.jobs_with_201), "", None),
        zero("jobs with a 201 not succeeded with a complete result", not_ok,
             _examples(facts.incomplete)),
        zero("jobs stuck (queued or running at the end)", facts.stuck),
        Row("jobs created whose 201 was lost (context)", str(facts.jobs_without_201), "", None),
        zero("worker processes that exited by themselves", len(facts.unexpected_exits),
             f" ({'; '.join(facts.unexpected_exits)})" if facts.unexpected_exits else ""),
        Row("runs in flight on a worker that died (SIGKILL or its own exit)", str(died), "",
            None),
        Row("runs handed back by a SIGTERMed worker", str(facts.handed_back), "", None),
        Row("lost runs recorded (jobs.lost_runs)", str(sum(facts.lost_runs.values())), "",
            None),
        zero("lost runs charged to a live worker", unexplained),
        Row("LLM calls received / answered / delivered to a live caller",
            f"{facts.received_calls} / {facts.answered_calls} / {facts.delivered_calls}", "",
            None),
        Row("LLM calls a clean run of the succeeded jobs needs", str(facts.clean_calls), "",
            None),
        Row("wasted LLM calls (answered - clean)", str(wasted),
            f"<= {interrupted} (runs in flight on a worker that died or was stopped)",
            wasted <= interrupted),
        Row("LLM calls recorded (llm_usage_daily)", str(facts.recorded_calls),
            f"= {facts.delivered_calls} (delivered), or down to {least_recorded} (answers "
            f"delivered within {KILL_RACE_S:g} s before a worker SIGKILL)",
            least_recorded <= facts.recorded_calls <= facts.delivered_calls),
        Row("requests / 503s while PostgreSQL was down",
            f"{len(down)} / {sum(1 for a in down if a.status == 503)}", "", None),
        Row("slowest 503", f"{slowest_503:.2f} s", f"<= {MAX_503_S:g} s",
            slowest_503 <= MAX_503_S),
        zero("5xx answers other than 503", sum(other_5xx.values()),
             f" ({dict(other_5xx)})" if other_5xx else ""),
        zero("requests without an answer in time (timeout)", len(timeouts)),
        Row("connections cut by a web worker SIGKILL (context)",
            str(len(no_answer) - len(timeouts) - len(uncut)), "", None),
        zero("connections cut otherwise", len(uncut)),
        zero("visitors stopped by an unexpected answer", len(facts.visitor_errors),
             f" ({facts.visitor_errors[0]})" if facts.visitor_errors else ""),
        Row("requests sent", str(len(answers)), "", None),
        Row("drain after the load (s)", f"{facts.drain_s:.0f}", "", None),
    ]


def _examples(reasons: dict[str, str]) -> str:
    if not reasons:
        return ""
    counted = Counter(reasons.values()).most_common(3)
    return " (" + ", ".join(f"{n} {why}" for why, n in counted) + ")"


def table(rows: list[Row]) -> str:
    lines = ["| figure | value | limit | pass |", "|---|---|---|---|"]
    lines += [f"| {r.figure} | {r.value} | {r.limit} | {r.verdict} |" for r in rows]
    return "\n".join(lines)


def passed(rows: list[Row]) -> bool:
    return all(row.passed is not False for row in rows)
