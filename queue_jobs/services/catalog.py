"""What exists, for the API's document and answers: job types, step labels, the errorCodes
a failed job can carry and how a synchronous call answers each."""

from __future__ import annotations

from queue_jobs.pipeline.failures import failure_classes, sync_status_by_code
from queue_jobs.pipeline.registry import PIPELINES

JOB_TYPES = list(PIPELINES)
STEP_LABELS = [step.label for pipeline in PIPELINES.values() for step in pipeline.steps]
FAILURE_CODES = sorted({cls.error_code for cls in failure_classes()})
SYNC_FAILURE_STATUS = sync_status_by_code()


def sync_failure_status(error_code: str | None) -> int:
    """The HTTP status a deprecated synchronous call answers a failed run with."""
    return SYNC_FAILURE_STATUS.get(error_code or "INTERNAL_ERROR", 500)


def sync_failures_by_status() -> dict[int, tuple[str, ...]]:
    """The same map turned around, for the API document: status -> its errorCodes."""
    by_status: dict[int, list[str]] = {}
    for code, status in sorted(SYNC_FAILURE_STATUS.items()):
        by_status.setdefault(status, []).append(code)
    return {status: tuple(codes) for status, codes in sorted(by_status.items())}
