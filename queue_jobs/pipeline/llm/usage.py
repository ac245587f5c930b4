"""Counts the LLM calls a step makes, the tokens they cost, the answers asked again and
the calls that failed.

Providers are shared by every run of a process, so they cannot hold a run's counts.
Instead the runner opens a `Meter` around each step (`metering`), and a provider reports
each answered call with `record`, each call that failed (no answer: a timeout, a 429, a
5xx...) with `failed`, and each unusable answer it asks for again with `reask` (the
re-ask itself is then one more recorded call); the meter is found through a
ContextVar, which is per thread, as each run's steps execute in one thread. Calls outside
a meter are not counted. A meter hands each call on as it is answered (`on_call`: the runs
layer writes it down at once, so a run killed mid-step leaves no paid call unrecorded),
each failed call as it fails (`on_failure`: a step retrying 429s shows at once), and
keeps the step's sums and re-asks for its step record and metrics (the pipeline may not
import observability).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelUsage:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


# Why an answer was asked for again (the reason label of llm_reasks_total).
REASK_REASONS = ("not_json", "truncated", "schema", "count")


@dataclass
class Meter:
    # Called with (model, input tokens, output tokens) as each call is answered; it must not
    # raise: the call is made and paid for, whatever becomes of its record.
    on_call: Callable[[str, int, int], None] | None = None
    # Called with (model, errorCode) as each call fails; it must not raise either.
    on_failure: Callable[[str, str], None] | None = None
    by_model: dict[str, ModelUsage] = field(default_factory=dict)
    reasks: dict[str, int] = field(default_factory=dict)  # reason -> answers asked again

    def add(self, model: str, input_tokens: int, output_tokens: int) -> None:
        usage = self.by_model.setdefault(model, ModelUsage())
        usage.calls += 1
        usage.input_tokens += input_tokens
        usage.output_tokens += output_tokens
        if self.on_call is not None:
            self.on_call(model, input_tokens, output_tokens)

    def fail(self, model: str, error_code: str) -> None:
        if self.on_failure is not None:
            self.on_failure(model, error_code)

    def reask(self, reason: str) -> None:
        self.reasks[reason] = self.reasks.get(reason, 0) + 1

    def rows(self) -> list[dict[str, int | str]]:
        """Per model, as the step-record statements take it (a JSON array)."""
        return [{"model": model, "calls": u.calls, "input_tokens": u.input_tokens,
                 "output_tokens": u.output_tokens} for model, u in sorted(self.by_model.items())]


def totals(rows: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(calls, tokens) of Meter.rows()-shaped usage."""
    return (sum(int(row["calls"]) for row in rows),
            sum(int(row["input_tokens"]) + int(row["output_tokens"]) for row in rows))


_current: ContextVar[Meter | None] = ContextVar("llm_usage_meter", default=None)


@contextmanager
def metering(meter: Meter) -> Iterator[Meter]:
    token = _current.set(meter)
    try:
        yield meter
    finally:
        _current.reset(token)


def record(model: str, input_tokens: int | None = 0, output_tokens: int | None = 0) -> None:
    """One answered call. Token counts the server did not report count as 0."""
    meter = _current.get()
    if meter is not None:
        meter.add(model, input_tokens or 0, output_tokens or 0)


def failed(model: str, error_code: str) -> None:
    """A call that got no answer: the errorCode it raised (LLM_RATE_LIMITED for a 429)."""
    meter = _current.get()
    if meter is not None:
        meter.fail(model, error_code)


def reask(reason: str) -> None:
    """An unusable answer asked for again, for `reason` (one of REASK_REASONS)."""
    meter = _current.get()
    if meter is not None:
        meter.reask(reason)
