"""Prometheus instruments for what happens to jobs, and the event lines written with them
(queue_jobs.observability.logs), counted in the process where it happens: creations and cancels of
queued jobs in the web processes (summed by gunicorn's multiprocess mode on /metrics),
runs, steps and LLM calls in the workers (each worker's WORKER_METRICS_PORT) and in the
web processes for deprecated synchronous calls. Sum them across instances in PromQL:
`sum by (type, outcome) (rate(jobs_finished_total[5m]))`.

Label values are bounded: job types, step keys, errorCodes, configured model names, the
re-ask reasons of queue_jobs.pipeline.llm.usage.REASK_REASONS.

Alert rules (ops/prometheus/alerts.yml) and the Grafana dashboard on these metrics
(ops/grafana/job-service-metrics.json) name them: a test fails when a name they use is no
longer registered here or in the other collectors.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Histogram

from queue_jobs.models import FinishedJob, UsageRows
from queue_jobs.observability import logs
from queue_jobs.pipeline.llm import usage as llm_usage

log = logging.getLogger(__name__)

CREATED = Counter("jobs_created_total", "Jobs created, by type.", ["type"])
FINISHED = Counter("jobs_finished_total",
                   "Jobs finished, by type and outcome (succeeded, or the errorCode).",
                   ["type", "outcome"])
STEP_SECONDS = Histogram(
    "jobs_step_duration_seconds", "Duration of each step run, by type, step and outcome.",
    ["type", "step", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300))
LLM_CALLS = Counter("llm_calls_total", "LLM calls answered, by model.", ["model"])
LLM_TOKENS = Counter("llm_tokens_total", "LLM tokens, by model and direction (input, output).",
                     ["model", "direction"])
LLM_REASKS = Counter("llm_reasks_total",
                     "Unusable LLM answers asked for again, by step and reason (not_json, "
                     "truncated, schema, count); each is also one more llm_calls_total.",
                     ["step", "reason"])

LLM_CALL_ERRORS = Counter(
    "llm_call_errors_total",
    "LLM calls that got no answer, by model and errorCode (LLM_RATE_LIMITED: HTTP 429, "
    "LLM_TIMEOUT, LLM_ERROR: any other), counted as they fail, whether the step retries "
    "them or not.", ["model", "error_code"])

INSTRUMENTS = (CREATED, FINISHED, STEP_SECONDS, LLM_CALLS, LLM_TOKENS, LLM_REASKS,
               LLM_CALL_ERRORS)


def created(job_type: str) -> None:
    CREATED.labels(job_type).inc()


def job_finished(job_id: uuid.UUID, finished: FinishedJob, outcome: str,
                 **fields: Any) -> None:
    """A job reached its final state: its counter and its job.finished line."""
    FINISHED.labels(finished.type, outcome).inc()
    logs.event(log, "job.finished", jobId=job_id, type=finished.type, outcome=outcome,
               durationMs=finished.elapsed_ms, **fields)


def step_finished(job_id: uuid.UUID, job_type: str, step: str, outcome: str,
                  duration_ms: int, usage: UsageRows, reasks: Mapping[str, int]) -> None:
    """A step run ended: its duration, the answers it asked for again (reason -> count,
    llm.usage.Meter.reasks) and its step.finished line (with the LLM calls it made; the
    call counters have them already, from llm_call)."""
    calls, tokens = llm_usage.totals(usage)
    logs.event(log, "step.finished", jobId=job_id, type=job_type, step=step, outcome=outcome,
               durationMs=duration_ms, llmCalls=calls, llmTokens=tokens,
               llmReasks=sum(reasks.values()))
    for reason, count in reasks.items():
        LLM_REASKS.labels(step, reason).inc(count)
    STEP_SECONDS.labels(job_type, step, outcome).observe(duration_ms / 1000)


def llm_call(model: str, input_tokens: int, output_tokens: int) -> None:
    """One answered LLM call, counted as it returns (a step cut short counts its calls)."""
    LLM_CALLS.labels(model).inc()
    LLM_TOKENS.labels(model, "input").inc(input_tokens)
    LLM_TOKENS.labels(model, "output").inc(output_tokens)


def llm_call_failed(model: str, error_code: str) -> None:
    """One LLM call that got no answer (a 429, a timeout, a 5xx...), counted as it fails."""
    LLM_CALL_ERRORS.labels(model, error_code).inc()
