"""estimatedTimeRemaining: how long the remaining steps took in recent successful jobs."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import datetime

from queue_jobs.pipeline.runner import Pipeline

CACHE_TTL_S = 15.0  # step means move slowly; one query per type per process per TTL


def remaining_seconds(pipeline: Pipeline, status: str, current_step: str | None,
                      step_started_at: datetime | None, now: datetime,
                      mean_ms: dict[str, int]) -> int | None:
    if status not in ("queued", "running"):
        return None
    keys = [step.key for step in pipeline.steps]
    start = keys.index(current_step) if current_step in keys else 0

    def seconds(key: str) -> float:
        if key in mean_ms:
            return mean_ms[key] / 1000
        return pipeline.default_step_seconds.get(key, 5.0)

    total = sum(seconds(key) for key in keys[start:])
    if status == "running" and current_step in keys and step_started_at is not None:
        elapsed = max(0.0, (now - step_started_at).total_seconds())
        total -= min(elapsed, seconds(current_step))  # an overrunning step still costs ~0
    return max(1, math.ceil(total))


class StepMeanCache:
    """Per-process cache of recent step means per job type."""

    def __init__(self, ttl_s: float = CACHE_TTL_S) -> None:
        self._ttl_s = ttl_s
        self._entries: dict[str, tuple[float, dict[str, int]]] = {}
        self._lock = threading.Lock()

    def peek(self, job_type: str) -> dict[str, int] | None:
        """The means if cached and fresh, else None (never reads the database)."""
        with self._lock:
            entry = self._entries.get(job_type)
        if entry and time.monotonic() - entry[0] < self._ttl_s:
            return entry[1]
        return None

    def get(self, job_type: str, load: Callable[[], dict[str, int]]) -> dict[str, int]:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(job_type)
            if entry and now - entry[0] < self._ttl_s:
                return entry[1]
        means = load()
        with self._lock:
            self._entries[job_type] = (now, means)
        return means
