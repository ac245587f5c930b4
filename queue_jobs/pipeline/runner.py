"""Runs a pipeline's steps in order with a checkpoint after each one.

The runner knows nothing of the database or the queue: it talks to a `Journal` (the
execution layer backs it with fenced SQL) and watches a `StopSignal` that the worker's
watchdog sets on cancel, timeout or shutdown. Steps already in the job's checkpoints are
skipped, so a retried or re-dispatched run resumes at the first unfinished step.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from queue_jobs.pipeline import later
from queue_jobs.pipeline.failures import JobFailure
from queue_jobs.pipeline.llm import usage
from queue_jobs.pipeline.llm.base import GeneratedImage, LLMProvider

log = logging.getLogger(__name__)


class RunSuperseded(Exception):
    """This run no longer owns the job (cancelled, reaped, retried): stop without writing."""


class StopSignal:
    """Set from the watchdog thread; checked by the runner between and inside steps."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._reason: BaseException | None = None

    def stop(self, reason: BaseException) -> None:
        if self._reason is None:
            self._reason = reason
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._reason is not None:
            raise self._reason

    def wait(self, seconds: float) -> None:
        """Sleeps up to `seconds`, raising at once if the run is stopped meanwhile."""
        self._event.wait(seconds)
        self.check()


@dataclass(frozen=True)
class StepServices:
    """What steps may use besides their inputs. Callables keep steps free of SQL."""

    provider: LLMProvider
    fetch_page: Callable[[str], Any]
    save_image: Callable[[GeneratedImage, str], str]  # (image, prompt) -> image URL
    create_organization: Callable[[str, str, dict[str, Any]], str]  # -> organization id
    # (organization id, post fields, "draft" | "published") -> the result's savedPost
    save_post: Callable[[str, dict[str, Any], str], dict[str, Any]]
    should_stop: Callable[[], bool]


@dataclass(frozen=True)
class StepInput:
    job_id: str
    job_input: dict[str, Any]
    outputs: dict[str, Any]  # outputs of the steps before this one
    services: StepServices


@dataclass(frozen=True)
class Step:
    key: str  # stored in jobs.current_step and as the checkpoint key
    label: str  # what the status document shows
    run: Callable[[StepInput], Any]  # returns the JSON-serialisable checkpoint
    weight: int  # share of the progress bar


@dataclass(frozen=True)
class Pipeline:
    job_type: str
    steps: tuple[Step, ...]
    build_result: Callable[[StepInput], dict[str, Any]]
    default_step_seconds: dict[str, float] = field(default_factory=dict)

    def label(self, step_key: str | None) -> str | None:
        return next((s.label for s in self.steps if s.key == step_key), None)

    def progress_before(self, index: int) -> int:
        """Progress when step `index` starts; the last step ends below 100 (100 = succeeded)."""
        total = sum(step.weight for step in self.steps)
        done = sum(step.weight for step in self.steps[:index])
        return min(99, done * 99 // total)


@dataclass(frozen=True)
class FinishedStep:
    key: str
    output: Any  # the checkpoint
    duration_ms: int
    usage: list[dict[str, Any]]  # llm.usage.Meter.rows()


class Journal(Protocol):
    """Durable record of one run; every method raises RunSuperseded if the run lost the job."""

    def start_step(self, step: str, progress: int) -> None: ...

    def checkpoint(self, steps: list[FinishedStep], progress: int,
                   next_step: str | None) -> None:
        """Keeps the steps' outputs and, in the same write, starts `next_step`."""

    def succeed(self, steps: list[FinishedStep], result: dict[str, Any]) -> None:
        """The run's last write: keeps the last steps' outputs and the job's result."""

    def step_failed(self, step: str, duration_ms: int, usage: list[dict[str, Any]],
                    outcome: str) -> None:
        """Records a step that raised ('failed') or was stopped ('interrupted'), with the
        LLM calls it made; never raises itself."""


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0


# Steps quicker than this (together) that made no LLM call are written with the next
# step's checkpoint rather than alone: running them again after a crash costs less than
# the write. LLM steps are written one by one, as they finish.
CARRY_MS = 200


class _Carried:
    """Finished steps not written yet. Should the step after them run longer than CARRY_MS,
    a timer writes them (starting that step in the same write), so the status document
    never shows a finished step for long."""

    def __init__(self, journal: Journal, carry_ms: int) -> None:
        self._journal = journal
        self._carry_ms = carry_ms
        self._steps: list[FinishedStep] = []
        self._lock = threading.Lock()
        self._timer: later.Handle | None = None

    def add(self, step: FinishedStep) -> bool:
        """True while the carried steps may wait for the next one: together quick, and
        none paid for LLM calls (lost in a crash, they would be paid for again)."""
        self._stop_timer()  # it would write `step` as still running
        with self._lock:
            self._steps.append(step)
            return (sum(s.duration_ms for s in self._steps) < self._carry_ms
                    and not any(s.usage for s in self._steps))

    def next_started(self, step: str, progress: int) -> None:
        self._stop_timer()  # the one armed for the step before, if it has not fired
        if self._steps:
            self._timer = later.call_later(self._carry_ms / 1000,
                                           lambda: self._write_late(step, progress))

    def take(self) -> list[FinishedStep]:
        """The steps still unwritten; a late write under way is waited for first, so
        writes reach the row in order."""
        self._stop_timer()
        with self._lock:
            steps, self._steps = self._steps, []
        return steps

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()  # waits for a late write under way
            self._timer = None

    def _write_late(self, step: str, progress: int) -> None:
        with self._lock:
            steps, self._steps = self._steps, []
        if not steps:
            return
        try:
            self._journal.checkpoint(steps, progress, step)
        except Exception:  # superseded (the journal recorded them), or the database away
            # (perhaps written, perhaps not: never written twice, at worst run again)
            log.warning("late checkpoint of %s failed", [s.key for s in steps],
                        exc_info=True)


def pending_steps(pipeline: Pipeline, checkpoints: dict[str, Any]) -> list[int]:
    """Indexes of the steps still to run (a resumed run skips the checkpointed ones)."""
    return [index for index, step in enumerate(pipeline.steps) if step.key not in checkpoints]


def run_pipeline(pipeline: Pipeline, job_id: str, job_input: dict[str, Any],
                 checkpoints: dict[str, Any], services: StepServices, journal: Journal,
                 stop: StopSignal, policy: RetryPolicy, *, first_step_shown: bool = False,
                 carry_ms: int = CARRY_MS) -> dict[str, Any]:
    """first_step_shown: the job row already shows the first pending step as started (the
    worker's claim does that), so no write is needed to start it."""
    outputs = dict(checkpoints)
    pending = pending_steps(pipeline, checkpoints)
    carried = _Carried(journal, carry_ms)
    for position, index in enumerate(pending):
        step = pipeline.steps[index]
        if stop.is_set():  # stopped between steps: the quick ones carried were interrupted
            _settle_carried(journal, carried.take(), True, 0, step.key)
            stop.check()
        if position == 0 and not first_step_shown:
            journal.start_step(step.key, pipeline.progress_before(index))
        carried.next_started(step.key, pipeline.progress_before(index))
        started = time.monotonic()
        step_input = StepInput(job_id, job_input, dict(outputs), services)
        meter = usage.Meter()
        try:
            with usage.metering(meter):
                output = _run_with_retries(step, step_input, stop, policy)
            stop.check()
        except BaseException as exc:
            # Stopped from outside (cancel, timeout, shutdown) or no longer this run's
            # job: the step did not fail, it was interrupted.
            interrupted = stop.is_set() or isinstance(exc, RunSuperseded)
            _settle_carried(journal, carried.take(), interrupted,
                            pipeline.progress_before(index), step.key)
            journal.step_failed(step.key, _ms_since(started), meter.rows(),
                                "interrupted" if interrupted else "failed")
            raise
        outputs[step.key] = output
        following = pending[position + 1] if position + 1 < len(pending) else None
        quick = carried.add(FinishedStep(step.key, output, _ms_since(started), meter.rows()))
        if following is None:
            break  # the last steps are written with the result
        if quick:
            continue
        unwritten = carried.take()  # empty if a late write took them all
        next_key = pipeline.steps[following].key
        if unwritten:
            journal.checkpoint(unwritten, pipeline.progress_before(index + 1), next_key)
        else:
            journal.start_step(next_key, pipeline.progress_before(index + 1))
    last_steps = carried.take()
    try:
        stop.check()
        result = pipeline.build_result(StepInput(job_id, job_input, outputs, services))
    except BaseException as exc:
        _settle_carried(journal, last_steps, stop.is_set() or isinstance(exc, RunSuperseded),
                        pipeline.progress_before(len(pipeline.steps)), pipeline.steps[-1].key)
        raise
    journal.succeed(last_steps, result)
    return result


def _settle_carried(journal: Journal, steps: list[FinishedStep], interrupted: bool,
                    progress: int, failing: str) -> None:
    """Steps finished before the one that raised: kept if the run goes on failing (a retry
    resumes after them, and the job names `failing` as the step that failed), else
    recorded as interrupted with the calls they made."""
    if not steps:
        return
    if not interrupted:
        with contextlib.suppress(RunSuperseded):  # refused: the journal recorded them
            journal.checkpoint(steps, progress, failing)
        return
    for step in steps:
        journal.step_failed(step.key, step.duration_ms, step.usage, "interrupted")


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _run_with_retries(step: Step, step_input: StepInput, stop: StopSignal,
                      policy: RetryPolicy) -> Any:
    attempt = 0
    while True:
        try:
            return step.run(step_input)
        except JobFailure as failure:
            stop.check()  # a cancelled run reports the cancel, not the fault it caused
            if not failure.transient or attempt >= policy.retries:
                raise
            delay = min(policy.max_backoff_s, policy.backoff_s * 2**attempt)
            attempt += 1
            log.warning("step %s: transient %s, retry %d in %.1fs", step.key,
                        failure.error_code, attempt, delay)
            stop.wait(delay)
