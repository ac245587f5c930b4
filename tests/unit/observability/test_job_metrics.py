"""A step's re-asks become llm_reasks_total{step,reason} and the llmReasks field of its
step.finished line."""

from __future__ import annotations

import logging
import uuid

import pytest
from prometheus_client import REGISTRY

from queue_jobs.observability import job_metrics


def _reasks(step: str, reason: str) -> float:
    return REGISTRY.get_sample_value("llm_reasks_total", {"step": step, "reason": reason}) or 0.0


def test_a_steps_reasks_are_counted_by_step_and_reason(caplog: pytest.LogCaptureFixture) -> None:
    before = {reason: _reasks("pitches", reason) for reason in ("count", "not_json", "schema")}
    usage = [{"model": "gpt-x", "calls": 4, "input_tokens": 10, "output_tokens": 5}]

    with caplog.at_level(logging.INFO, logger=job_metrics.__name__):
        job_metrics.step_finished(uuid.uuid4(), "website-analysis", "pitches", "succeeded",
                                  120, usage, {"count": 2, "not_json": 1})

    assert _reasks("pitches", "count") == before["count"] + 2
    assert _reasks("pitches", "not_json") == before["not_json"] + 1
    assert _reasks("pitches", "schema") == before["schema"]
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "step.finished"]
    assert (line.__dict__["llmCalls"], line.__dict__["llmReasks"]) == (4, 3)
