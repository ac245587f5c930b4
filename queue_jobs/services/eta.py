"""estimatedTimeRemaining: the wait in the queue plus what is left of the job's own steps.

Pure maths over numbers the caller reads (and caches per process with TtlCache):
- a step's time is its recent mean; one that overruns the mean is extended to its recent
  p90, and past that a share of the overrun is still to come (never a flat 1 s);
- a step that reports finished units (the images step, through `progress`) goes at the
  pace this run shows, never faster than its mean would have it;
- a queued job's wait is the starts it needs (its position) over the rate at which the
  workers start jobs, never slower than its busy slots free (docs/operations.md, "Fair
  turns and queue position").
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

from queue_jobs.models import QueuePace, StepTiming
from queue_jobs.pipeline.runner import Pipeline

CACHE_TTL_S = 15.0  # step means move slowly; one query per type per process per TTL
EMPTY_HISTORY_TTL_S = 1.0  # a type with no history yet: its first successes count soon
PACE_TTL_S = 5.0  # the queue's pace moves faster: one query per process per TTL
PACE_WINDOW_S = 300.0  # starts counted over the last five minutes
# Fewer starts than this in the window are no rate to go by (a quiet service, or one just
# started): the wait is then the busy slots' pace, slots ÷ mean run time.
MIN_RECENT_STARTS = 3
# Beyond its p90 a step has no statistics left to go by; a quarter of the time it has
# overrun its mean is shown as still to come, so the estimate grows with the overrun.
OVERRUN_SHARE = 0.25
DEFAULT_STEP_S = 5.0

T = TypeVar("T")


def step_seconds_left(timing: StepTiming | None, default_s: float, elapsed_s: float,
                      done_fraction: float = 0.0) -> float:
    """What is left of a running step that started `elapsed_s` ago, of which
    `done_fraction` of its units are done (0: none, or a step without units)."""
    mean_s = timing.mean_ms / 1000 if timing else default_s
    p90_s = max(mean_s, timing.p90_ms / 1000 if timing else mean_s)
    elapsed_s = max(0.0, elapsed_s)
    if done_fraction > 0:
        done = min(1.0, done_fraction)
        # This run's own pace over its finished units, not faster than the mean's.
        return max(mean_s, elapsed_s / done) * (1 - done)
    if elapsed_s <= mean_s:
        return mean_s - elapsed_s
    return max(p90_s - elapsed_s, OVERRUN_SHARE * (elapsed_s - mean_s))


def queue_wait_s(position: int, pace: QueuePace, mean_run_s: float) -> float:
    """Seconds until a job at `position` (1: next) starts. Every start before its own and
    its own must happen, at the rate the workers recently started jobs, or at busy slots
    ÷ mean run time (`mean_run_s` when the queue has none) if that is faster: while a job
    waits every slot is busy, so that is how fast slots free now, whereas the window also
    counts whatever idle time came before the backlog (a burst after a quiet minute would
    otherwise wait as if the workers were as idle as that minute). Fewer recent starts
    than MIN_RECENT_STARTS are no rate: the busy slots alone pace the wait. A live worker
    running nothing has a free slot: no wait."""
    if pace.live_workers > 0 and pace.busy_slots == 0:
        return 0.0
    rate = max(1, pace.busy_slots) / max(1.0, pace.mean_run_s or mean_run_s)
    if pace.recent_starts >= MIN_RECENT_STARTS and pace.window_s > 0:
        rate = max(rate, pace.recent_starts / pace.window_s)
    return max(0, position) / rate


def pipeline_seconds(pipeline: Pipeline, timings: dict[str, StepTiming]) -> float:
    """The whole pipeline at its steps' recent means (defaults where none)."""
    return sum(_mean_s(pipeline, key, timings) for key in (s.key for s in pipeline.steps))


def remaining_seconds(pipeline: Pipeline, status: str, current_step: str | None,
                      step_started_at: datetime | None, now: datetime,
                      timings: dict[str, StepTiming], *, progress: int = 0,
                      wait_s: float = 0.0) -> int | None:
    """The job's estimate: `wait_s` (a queued job's, queue_wait_s) plus its steps from the
    current one on; a running step's units done are read from `progress` (the share of
    the step's progress span it has reached)."""
    if status not in ("queued", "running"):
        return None
    keys = [step.key for step in pipeline.steps]
    start = keys.index(current_step) if current_step in keys else 0
    total = sum(_mean_s(pipeline, key, timings) for key in keys[start:])
    if status == "running" and current_step in keys and step_started_at is not None:
        elapsed = (now - step_started_at).total_seconds()
        low, high = pipeline.progress_before(start), pipeline.progress_before(start + 1)
        done = (progress - low) / (high - low) if high > low and progress > low else 0.0
        total += step_seconds_left(timings.get(current_step),
                                   _mean_s(pipeline, current_step, timings), elapsed,
                                   done) - _mean_s(pipeline, current_step, timings)
    if status == "queued":
        total += wait_s
    # To the nearest second: rounding up would add half a second to every estimate on
    # average (a quarter of what is left of a 2 s remainder); never 0 while active.
    return max(1, math.floor(total + 0.5))


def _mean_s(pipeline: Pipeline, key: str, timings: dict[str, StepTiming]) -> float:
    timing = timings.get(key)
    if timing is not None:
        return timing.mean_ms / 1000
    return pipeline.default_step_seconds.get(key, DEFAULT_STEP_S)


class TtlCache(Generic[T]):
    """Per-process cache of values that move slowly (step timings per job type, the
    queue's pace): at most one load per key per TTL. An empty value (a job type with no
    history yet) is kept only `empty_ttl_s`: the first jobs to finish on a new service
    count within that, not a whole TTL later."""

    def __init__(self, ttl_s: float = CACHE_TTL_S, empty_ttl_s: float | None = None) -> None:
        self._ttl_s = ttl_s
        self._empty_ttl_s = ttl_s if empty_ttl_s is None else min(ttl_s, empty_ttl_s)
        self._entries: dict[str, tuple[float, T]] = {}
        self._lock = threading.Lock()

    def peek(self, key: str) -> T | None:
        """The value if cached and fresh, else None (never loads it)."""
        with self._lock:
            entry = self._entries.get(key)
        if entry and self._fresh(entry, time.monotonic()):
            return entry[1]
        return None

    def get(self, key: str, load: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry and self._fresh(entry, now):
                return entry[1]
        value = load()
        with self._lock:
            self._entries[key] = (now, value)
        return value

    def _fresh(self, entry: tuple[float, T], now: float) -> bool:
        loaded_at, value = entry
        return now - loaded_at < (self._ttl_s if value else self._empty_ttl_s)
