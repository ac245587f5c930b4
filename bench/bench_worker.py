"""Our worker (`python -m queue_jobs.worker`) with pipelines whose steps do nothing, for
the benchmarks: what remains is the service's own cost per job (claim, a start and a
checkpoint per step, the final write). BENCH_STEP_SECONDS > 0 makes each step wait that
long instead (a job that is "running", as while an LLM answers), and BENCH_STEP_JITTER
(0 to 1) spreads each step's wait evenly over STEP_SECONDS x (1 +/- jitter): steps of known
but varying length, whose jobs' estimates can be checked against their real durations.

    python -m bench.bench_worker --concurrency 4
"""

from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import replace
from typing import Any

from queue_jobs.pipeline.registry import PIPELINES
from queue_jobs.pipeline.runner import Pipeline, Step, StepInput
from queue_jobs.worker import main as worker

STEP_SECONDS = float(os.environ.get("BENCH_STEP_SECONDS", "0"))
STEP_JITTER = float(os.environ.get("BENCH_STEP_JITTER", "0"))


def _idle_step(step: Step) -> Step:
    def run(step_input: StepInput) -> dict[str, Any]:
        seconds = STEP_SECONDS * random.uniform(1 - STEP_JITTER, 1 + STEP_JITTER)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not step_input.services.should_stop():
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return {}
    # The step's own weight: the API computes progress spans (and the estimate's share of
    # a step done) from the real pipeline, so the worker must write the same progress.
    return replace(step, run=run)


def _no_result(step_input: StepInput) -> dict[str, Any]:
    return {"success": True}


def hollow_out_pipelines() -> None:
    """Same job types, step keys and weights (the jobs table, the status labels and the
    progress the API reads know them)."""
    for job_type, pipeline in list(PIPELINES.items()):
        PIPELINES[job_type] = Pipeline(
            job_type, tuple(_idle_step(step) for step in pipeline.steps),
            build_result=_no_result, default_step_seconds=pipeline.default_step_seconds)


if __name__ == "__main__":
    hollow_out_pipelines()
    sys.exit(worker.main())
