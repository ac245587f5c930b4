"""Failures a job can end with. Each class carries the contract's errorCode.

`transient` marks faults worth retrying inside the step (with backoff) before the
job fails; permanent ones fail the job at once. `sync_status` is the HTTP status a
deprecated synchronous call answers the failure with (the jobs API answers none: a failed
job is a status document).
"""

from __future__ import annotations


class JobFailure(Exception):
    """The job failed."""

    error_code = "INTERNAL_ERROR"
    transient = False
    sync_status = 500

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self)


class FetchFailed(JobFailure):
    """The website could not be fetched."""

    error_code = "FETCH_FAILED"
    sync_status = 422


class TransientFetchFailed(FetchFailed):
    """The website did not answer in time or reset the connection."""

    transient = True


class FetchBlocked(JobFailure):
    """The URL points at an address this service may not fetch."""

    error_code = "FETCH_BLOCKED"
    sync_status = 422


class InvalidContent(JobFailure):
    """The page is not an HTML document this service can analyse."""

    error_code = "INVALID_CONTENT"
    sync_status = 422


class LLMError(JobFailure):
    """The language model failed to answer."""

    error_code = "LLM_ERROR"
    sync_status = 502


class UnusableAnswer(LLMError):
    """The language model's answer could not be used."""

    def __init__(self, message: str, *, reason: str, problem: str, answer: str = "") -> None:
        super().__init__(message)
        # Why, as llm_reasks_total counts it: not_json, truncated, schema or count.
        self.reason = reason
        self.problem = problem  # what a follow-up message tells the model to fix
        self.answer = answer  # the unusable answer itself, as the model wrote it


class TransientLLMError(LLMError):
    """The language model service had a passing fault."""

    transient = True


class LLMRateLimited(LLMError):
    """The language model service is rate limiting us."""

    error_code = "LLM_RATE_LIMITED"
    transient = True


class LLMTimeout(LLMError):
    """The language model did not answer in time."""

    error_code = "LLM_TIMEOUT"
    sync_status = 504
    transient = True


class Cancelled(JobFailure):
    """Cancelled"""

    error_code = "CANCELLED"
    sync_status = 409


class TimedOut(JobFailure):
    """The job ran longer than its time limit."""

    error_code = "TIMEOUT"
    sync_status = 504


class WorkerLost(JobFailure):
    """The worker running this job was lost too many times."""

    error_code = "WORKER_LOST"


def failure_classes(cls: type[JobFailure] = JobFailure) -> list[type[JobFailure]]:
    """Every failure class, `cls` and its subclasses."""
    return [cls, *(sub for child in cls.__subclasses__() for sub in failure_classes(child))]


def sync_status_by_code() -> dict[str, int]:
    """errorCode -> the HTTP status a synchronous call answers it with."""
    return {cls.error_code: cls.sync_status for cls in failure_classes()}
