"""Runs a pipeline's steps in order with a checkpoint after each one.

The runner knows nothing of the database or the queue: it talks to a `Journal` (the
execution layer backs it with fenced SQL) and watches a `StopSignal` that the worker's
watchdog sets on cancel, timeout or shutdown. Steps already in the job's checkpoints are
skipped, so a retried or re-dispatched run resumes at the first unfinished step.

Paid work is never done twice: a step that makes several costly things (images) keeps
each one as a part as soon as it is made (`StepInput.image`), so the step run again (a
retry inside the run, or a resumed run) makes only the missing ones; and every LLM call
is handed to `StepServices.record_llm_call` as it returns, not at the step's end.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

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

    @property
    def event(self) -> threading.Event:
        """Set once stopped: to wait on (stop() is what sets it, with a reason)."""
        return self._event

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
    # (step, part, image, prompt, progress) -> image URL: the image and the step's part
    # naming it, saved together (a run that lost the job gets RunSuperseded), with the
    # job's progress raised to `progress` (None: left). Steps use StepInput.image.
    save_image: Callable[[str, str, GeneratedImage, str, int | None], str]
    create_organization: Callable[[str, str, dict[str, Any]], str]  # -> organization id
    # (organization id, post fields, "draft" | "published") -> the result's savedPost
    save_post: Callable[[str, dict[str, Any], str], dict[str, Any]]
    should_stop: Callable[[], bool]
    # (step, model, input tokens, output tokens): one answered LLM call, written down as it
    # returns; never raises (the call is paid for whatever becomes of its record).
    record_llm_call: Callable[[str, str, int, int], None]
    # (model, errorCode): one LLM call that got no answer (a 429, a timeout...), counted as
    # it fails, retried or not; never raises.
    record_llm_failure: Callable[[str, str], None] = lambda model, error_code: None


@dataclass(frozen=True)
class StepInput:
    job_id: str
    job_input: dict[str, Any]
    outputs: dict[str, Any]  # outputs of the steps before this one
    services: StepServices
    step: str = ""  # this step's key
    # This step's parts made already (by an earlier run, or an earlier try of this one):
    # part -> value. It grows as parts are saved, and the runner hands the same dict to
    # every try of the step.
    parts: dict[str, Any] = field(default_factory=dict)
    # The job's progress when this step starts and when it ends (Pipeline.progress_before).
    progress_span: tuple[int, int] = (0, 0)

    def image(self, part: str, prompt: str, *, unit: tuple[int, int] | None = None) -> str:
        """The URL of the step's image `part`: the one kept, or one generated now and saved
        with its part (so it is paid for once, however often the step is run again).
        unit (n, of): the image is the step's n-th unit of `of`: once saved, the job's
        progress moves to that share of the step's span (the ETA reads its pace there)."""
        url = self.parts.get(part)
        if url is None:
            image = self.services.provider.generate_image(prompt)
            url = self.services.save_image(self.step, part, image, prompt,
                                           self.progress_after(*unit) if unit else None)
            self.parts[part] = url
        return str(url)

    def progress_after(self, done: int, of: int) -> int:
        """The job's progress once `done` of this step's `of` units are finished."""
        low, high = self.progress_span
        return low + (high - low) * min(done, of) // max(1, of)


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
    reasks: dict[str, int] = field(default_factory=dict)  # llm.usage.Meter.reasks


class Journal(Protocol):
    """Durable record of one run; every method raises RunSuperseded if the run lost the job."""

    def start_step(self, step: str, progress: int) -> None: ...

    def checkpoint(self, step: FinishedStep, progress: int, next_step: str) -> None:
        """Keeps the step's output and, in the same write, starts `next_step`."""

    def succeed(self, step: FinishedStep | None, result: dict[str, Any]) -> None:
        """The run's last write: keeps the last step's output (None: a resumed run had
        none left to run) and the job's result."""

    def step_failed(self, step: str, duration_ms: int, usage: list[dict[str, Any]],
                    outcome: str, reasks: dict[str, int]) -> None:
        """Records a step that raised ('failed') or was stopped ('interrupted'), with the
        LLM calls it made and the answers it asked for again; never raises itself."""


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0


def pending_steps(pipeline: Pipeline, checkpoints: dict[str, Any]) -> list[int]:
    """Indexes of the steps still to run (a resumed run skips the checkpointed ones)."""
    return [index for index, step in enumerate(pipeline.steps) if step.key not in checkpoints]


def run_pipeline(pipeline: Pipeline, job_id: str, job_input: dict[str, Any],
                 checkpoints: dict[str, Any], services: StepServices, journal: Journal,
                 stop: StopSignal, policy: RetryPolicy, *,
                 first_step_shown: bool = False,
                 parts: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """first_step_shown: the job row already shows the first pending step as started (the
    worker's claim does that), so no write is needed to start it. parts: what unfinished
    steps made before (step -> parts), as the job row keeps it."""
    parts = parts or {}
    outputs = dict(checkpoints)
    pending = pending_steps(pipeline, checkpoints)
    last: FinishedStep | None = None  # written with the result, in the run's last write
    for position, index in enumerate(pending):
        step = pipeline.steps[index]
        stop.check()
        if position == 0 and not first_step_shown:
            journal.start_step(step.key, pipeline.progress_before(index))
        started = time.monotonic()
        step_input = StepInput(job_id, job_input, dict(outputs), services, step.key,
                               dict(parts.get(step.key, {})),
                               (pipeline.progress_before(index),
                                pipeline.progress_before(index + 1)))
        meter = usage.Meter(on_call=functools.partial(services.record_llm_call, step.key),
                            on_failure=services.record_llm_failure)
        try:
            with usage.metering(meter):
                output = _run_with_retries(step, step_input, stop, policy)
            stop.check()
        except BaseException as exc:
            # Stopped from outside (cancel, timeout, shutdown) or no longer this run's
            # job: the step did not fail, it was interrupted.
            interrupted = stop.is_set() or isinstance(exc, RunSuperseded)
            journal.step_failed(step.key, _ms_since(started), meter.rows(),
                                "interrupted" if interrupted else "failed", meter.reasks)
            raise
        outputs[step.key] = output
        finished = FinishedStep(step.key, output, _ms_since(started), meter.rows(),
                                meter.reasks)
        if position + 1 == len(pending):
            last = finished
            break
        # Kept as soon as it finishes, however quick, in the write that shows the next step
        # as started: a crash loses at most the step under way (the last step is kept with
        # the result).
        journal.checkpoint(finished, pipeline.progress_before(index + 1),
                           pipeline.steps[pending[position + 1]].key)
    try:
        stop.check()
        result = pipeline.build_result(StepInput(job_id, job_input, outputs, services))
    except BaseException as exc:
        if last is not None:
            _settle_last(journal, last, stop.is_set() or isinstance(exc, RunSuperseded),
                         pipeline.progress_before(len(pipeline.steps)))
        raise
    journal.succeed(last, result)
    return result


def _settle_last(journal: Journal, step: FinishedStep, interrupted: bool,
                 progress: int) -> None:
    """The last step, when no result follows it: kept if the run goes on failing (a retry
    resumes after it, and the job goes on naming it as the step that failed), else
    recorded as interrupted with the calls it made."""
    if interrupted:
        journal.step_failed(step.key, step.duration_ms, step.usage, "interrupted",
                            step.reasks)
        return
    with contextlib.suppress(RunSuperseded):  # refused: the journal recorded it
        journal.checkpoint(step, progress, step.key)


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
