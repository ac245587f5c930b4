"""Pure pieces: the pipeline runner, the ETA and the status document."""

from __future__ import annotations

import math
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from queue_jobs.models import JobRow, StepTiming
from queue_jobs.pipeline.failures import Cancelled, FetchFailed, TransientLLMError
from queue_jobs.pipeline.llm import usage
from queue_jobs.pipeline.runner import (
    FinishedStep,
    Pipeline,
    RetryPolicy,
    Step,
    StepInput,
    StepServices,
    StopSignal,
    run_pipeline,
)
from queue_jobs.pipeline.website_analysis import PIPELINE
from queue_jobs.services.eta import remaining_seconds
from queue_jobs.services.jobs import status_document


class RecordingJournal:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, int]] = []
        self.usage: list[tuple[str, str, list[dict[str, Any]]]] = []
        self.reasks: list[tuple[str, str, dict[str, int]]] = []

    def start_step(self, step: str, progress: int) -> None:
        self.events.append(("start", step, progress))

    def checkpoint(self, step: FinishedStep, progress: int, next_step: str) -> None:
        self.events.append(("checkpoint", step.key, progress))
        self.usage.append(("succeeded", step.key, step.usage))
        self.reasks.append(("succeeded", step.key, step.reasks))
        self.events.append(("start", next_step, progress))  # in the same write

    def succeed(self, step: FinishedStep | None, result: dict[str, Any]) -> None:
        if step is not None:  # kept with the result, in one write
            self.events.append(("last", step.key, 100))
            self.usage.append(("succeeded", step.key, step.usage))
            self.reasks.append(("succeeded", step.key, step.reasks))
        self.events.append(("result", "", 100))

    def step_failed(self, step: str, duration_ms: int, usage: list[dict[str, Any]],
                    outcome: str, reasks: dict[str, int]) -> None:
        self.events.append((outcome, step, -1))
        self.usage.append((outcome, step, usage))
        self.reasks.append((outcome, step, reasks))


def _services(provider: Any = None,
              calls: list[tuple[str, str, int, int]] | None = None) -> StepServices:
    """calls: where record_llm_call puts each call it is handed."""
    def record_llm_call(step: str, model: str, input_tokens: int, output_tokens: int) -> None:
        if calls is not None:
            calls.append((step, model, input_tokens, output_tokens))

    return StepServices(provider=provider, fetch_page=lambda url: None,
                        save_image=lambda step, part, image, prompt, _: f"/{step}/{part}",
                        create_organization=lambda *a: "", save_post=lambda *a: {},
                        should_stop=lambda: False, record_llm_call=record_llm_call)


def _pipeline(calls: list[str], failures: dict[str, list[Exception]]) -> Pipeline:
    def step(key: str) -> Step:
        def run(step_input: StepInput) -> dict[str, Any]:
            calls.append(key)
            if failures.get(key):
                raise failures[key].pop(0)
            return {"from": key, "saw": sorted(step_input.outputs)}
        return Step(key, f"{key}...", run, weight=1)

    return Pipeline("test", (step("a"), step("b"), step("c")),
                    build_result=lambda step_input: {"outputs": step_input.outputs})


def test_runner_resumes_after_the_last_checkpoint() -> None:
    calls: list[str] = []
    journal = RecordingJournal()
    result = run_pipeline(_pipeline(calls, {}), "job", {}, {"a": {"from": "a"}}, _services(),
                          journal, StopSignal(), RetryPolicy(retries=0))
    assert calls == ["b", "c"]
    assert result["outputs"]["b"]["saw"] == ["a"]
    assert journal.events == [("start", "b", 33), ("checkpoint", "b", 66),
                              ("start", "c", 66), ("last", "c", 100), ("result", "", 100)]


def test_every_step_is_kept_as_it_finishes_however_quick() -> None:
    journal = RecordingJournal()
    run_pipeline(_pipeline([], {}), "job", {}, {}, _services(), journal, StopSignal(),
                 RetryPolicy(retries=0), first_step_shown=True)
    # the claim showed "a"; each checkpoint starts the next step, the last one comes with
    # the result
    assert journal.events == [("checkpoint", "a", 33), ("start", "b", 33),
                              ("checkpoint", "b", 66), ("start", "c", 66),
                              ("last", "c", 100), ("result", "", 100)]


def test_a_step_is_kept_before_the_next_one_runs() -> None:
    seen: list[list[tuple[str, str, int]]] = []
    journal = RecordingJournal()

    def watch(step_input: StepInput) -> dict[str, Any]:
        seen.append(list(journal.events))
        return {}

    pipeline = Pipeline("test", (Step("a", "a", watch, weight=1),
                                 Step("b", "b", watch, weight=2)),
                        build_result=lambda step_input: {})
    run_pipeline(pipeline, "job", {}, {}, _services(), journal, StopSignal(),
                 RetryPolicy(retries=0))
    # while "b" runs, "a" is written and "b" shown as started
    assert seen == [[("start", "a", 0)],
                    [("start", "a", 0), ("checkpoint", "a", 33), ("start", "b", 33)]]
    assert journal.events[-2:] == [("last", "b", 100), ("result", "", 100)]


def test_when_the_result_cannot_be_built_the_last_step_is_kept() -> None:
    journal = RecordingJournal()

    def no_result(step_input: StepInput) -> dict[str, Any]:
        raise FetchFailed()

    pipeline = replace(_pipeline([], {}), build_result=no_result)
    with pytest.raises(FetchFailed):
        run_pipeline(pipeline, "job", {}, {}, _services(), journal, StopSignal(),
                     RetryPolicy(retries=0), first_step_shown=True)
    # kept (a retry resumes after it), the job showing the last step as the failing one
    assert journal.events == [("checkpoint", "a", 33), ("start", "b", 33),
                              ("checkpoint", "b", 66), ("start", "c", 66),
                              ("checkpoint", "c", 99), ("start", "c", 99)]


def test_steps_before_a_failing_one_are_kept() -> None:
    journal = RecordingJournal()
    with pytest.raises(FetchFailed):
        run_pipeline(_pipeline([], {"c": [FetchFailed()]}), "job", {}, {}, _services(),
                     journal, StopSignal(), RetryPolicy(retries=0), first_step_shown=True)
    # b written with "c" shown as started: the job names the step that failed
    assert journal.events == [("checkpoint", "a", 33), ("start", "b", 33),
                              ("checkpoint", "b", 66), ("start", "c", 66),
                              ("failed", "c", -1)]


def test_transient_failures_are_retried_permanent_ones_are_not() -> None:
    calls: list[str] = []
    failures: dict[str, list[Exception]] = {"b": [TransientLLMError(), TransientLLMError()]}
    run_pipeline(_pipeline(calls, failures), "job", {}, {}, _services(), RecordingJournal(),
                 StopSignal(), RetryPolicy(retries=2, backoff_s=0.001))
    assert calls == ["a", "b", "b", "b", "c"]
    calls.clear()
    with pytest.raises(FetchFailed):
        run_pipeline(_pipeline(calls, {"a": [FetchFailed()]}), "job", {}, {}, _services(),
                     RecordingJournal(), StopSignal(), RetryPolicy(retries=5))
    assert calls == ["a"]


def test_each_step_run_reports_the_llm_calls_made_during_it() -> None:
    def step(key: str, tokens: int, fails: bool = False) -> Step:
        def run(step_input: StepInput) -> dict[str, Any]:
            usage.record("gpt-x", tokens, 1)
            usage.record("img-y")
            if fails:
                raise FetchFailed()
            return {}
        return Step(key, key, run, weight=1)

    journal = RecordingJournal()
    pipeline = Pipeline("test", (step("a", 10), step("b", 20, fails=True)),
                        build_result=lambda step_input: {})
    usage.record("outside-any-step")  # not counted anywhere
    with pytest.raises(FetchFailed):
        run_pipeline(pipeline, "job", {}, {}, _services(), journal, StopSignal(),
                     RetryPolicy(retries=0))
    model_y = {"model": "img-y", "calls": 1, "input_tokens": 0, "output_tokens": 0}
    assert journal.usage == [
        ("succeeded", "a", [{"model": "gpt-x", "calls": 1, "input_tokens": 10,
                             "output_tokens": 1}, model_y]),
        ("failed", "b", [{"model": "gpt-x", "calls": 1, "input_tokens": 20,
                          "output_tokens": 1}, model_y])]


def test_each_step_run_reports_the_answers_asked_again_during_it() -> None:
    def step(key: str, reasons: list[str], fails: bool = False) -> Step:
        def run(step_input: StepInput) -> dict[str, Any]:
            for reason in reasons:
                usage.reask(reason)
            if fails:
                raise FetchFailed()
            return {}
        return Step(key, key, run, weight=1)

    journal = RecordingJournal()
    pipeline = Pipeline("test", (step("a", ["count", "count", "not_json"]), step("b", []),
                                 step("c", ["truncated"], fails=True)),
                        build_result=lambda step_input: {})
    usage.reask("schema")  # outside any step: not counted anywhere
    with pytest.raises(FetchFailed):
        run_pipeline(pipeline, "job", {}, {}, _services(), journal, StopSignal(),
                     RetryPolicy(retries=0))
    assert journal.reasks == [("succeeded", "a", {"count": 2, "not_json": 1}),
                              ("succeeded", "b", {}), ("failed", "c", {"truncated": 1})]


def test_a_step_stopped_from_outside_is_recorded_as_interrupted() -> None:
    stop = StopSignal()

    def cancelled_meanwhile(step_input: StepInput) -> dict[str, Any]:
        usage.record("gpt-x", 5, 5)
        stop.stop(Cancelled())  # as the watchdog does while the step's call runs
        return {}

    journal = RecordingJournal()
    pipeline = Pipeline("test", (Step("a", "a", cancelled_meanwhile, weight=1),),
                        build_result=lambda step_input: {})
    with pytest.raises(Cancelled):
        run_pipeline(pipeline, "job", {}, {}, _services(), journal, stop, RetryPolicy())
    assert journal.usage == [("interrupted", "a", [
        {"model": "gpt-x", "calls": 1, "input_tokens": 5, "output_tokens": 5}])]


def test_a_stopped_run_raises_its_reason_before_the_next_step() -> None:
    stop = StopSignal()
    stop.stop(Cancelled())
    calls: list[str] = []
    with pytest.raises(Cancelled):
        run_pipeline(_pipeline(calls, {}), "job", {}, {}, _services(), RecordingJournal(),
                     stop, RetryPolicy())
    assert calls == []


NOW = datetime(2026, 1, 29, 12, 0, 0, tzinfo=UTC)


def test_eta_uses_recent_means_and_defaults() -> None:
    means = {key: StepTiming(ms, ms) for key, ms in
             {"analyze": 4000, "audiences": 2000, "pitches": 2000, "images": 10000}.items()}
    assert remaining_seconds(PIPELINE, "queued", None, None, NOW, means) == 18
    running = remaining_seconds(PIPELINE, "running", "audiences", NOW - timedelta(seconds=1),
                                NOW, means)
    assert running == 13  # 1 s left of audiences + pitches + images
    defaults = sum(PIPELINE.default_step_seconds.values())
    assert remaining_seconds(PIPELINE, "queued", None, None, NOW, {}) == defaults
    assert remaining_seconds(PIPELINE, "succeeded", "images", None, NOW, means) is None
    # Changed with the queue-wait estimate (tests/unit/services/test_eta.py): an hour past
    # its 10 s mean, the last step no longer shows 1 s but a share of its overrun.
    overrun = remaining_seconds(PIPELINE, "running", "images", NOW - timedelta(hours=1), NOW,
                                means)
    assert overrun == math.ceil(0.25 * (3600 - 10))


def _row(**changes: Any) -> JobRow:
    fields: dict[str, Any] = dict(
        id=uuid.UUID(int=1), type="website-analysis", owner_user_id=None,
        owner_session_id="sess_12345678", status="running", progress=40,
        current_step="audiences", error=None, error_code=None, result={"x": 1},
        step_started_at=NOW, created_at=NOW, updated_at=NOW + timedelta(seconds=75))
    fields.update(changes)
    return JobRow(**fields)


def test_status_document_follows_the_contract() -> None:
    document = status_document(_row(), 12, None)
    assert document == {
        "jobId": "00000000-0000-0000-0000-000000000001", "type": "website-analysis",
        "status": "running", "progress": 40, "currentStep": "Generating audiences...",
        "estimatedTimeRemaining": 12, "queuePosition": None, "pausedReason": None,
        "error": None, "errorCode": None,
        "createdAt": "2026-01-29T12:00:00Z", "updatedAt": "2026-01-29T12:01:15Z",
        "result": None}
    queued = status_document(_row(status="queued"), 30, 3)
    assert (queued["currentStep"], queued["queuePosition"]) == (None, 3)
    # a position is shown while queued only (a document re-rendered for a running job)
    assert status_document(_row(), 30, 3)["queuePosition"] is None
    failed = status_document(_row(status="failed", error="Boom", error_code="LLM_ERROR"), None,
                             None)
    assert (failed["currentStep"], failed["errorCode"]) == ("Generating audiences...",
                                                            "LLM_ERROR")
    just_claimed = status_document(_row(current_step=None, progress=0), 30, None)
    assert just_claimed["currentStep"] == "Analyzing website..."  # running shows a step
    cancelled_while_queued = status_document(_row(status="failed", current_step=None), None, None)
    assert cancelled_while_queued["currentStep"] is None
    succeeded = status_document(_row(status="succeeded", progress=100), None, None)
    assert succeeded["result"] == {"x": 1}
    assert "result" not in status_document(_row(), None, None, with_result=False)
