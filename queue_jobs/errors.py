"""Failures a job can end with. Each class carries the contract's errorCode.

`transient` marks faults worth retrying inside the step (with backoff) before the
job fails; permanent ones fail the job at once.
"""

from __future__ import annotations


class JobFailure(Exception):
    """The job failed."""

    error_code = "INTERNAL_ERROR"
    transient = False

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self)


class FetchFailed(JobFailure):
    """The website could not be fetched."""

    error_code = "FETCH_FAILED"


class TransientFetchFailed(FetchFailed):
    """The website did not answer in time or reset the connection."""

    transient = True


class FetchBlocked(JobFailure):
    """The URL points at an address this service may not fetch."""

    error_code = "FETCH_BLOCKED"


class InvalidContent(JobFailure):
    """The page is not an HTML document this service can analyse."""

    error_code = "INVALID_CONTENT"


class LLMError(JobFailure):
    """The language model failed to answer."""

    error_code = "LLM_ERROR"


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
    transient = True


class Cancelled(JobFailure):
    """Cancelled"""

    error_code = "CANCELLED"


class TimedOut(JobFailure):
    """The job ran longer than its time limit."""

    error_code = "TIMEOUT"


class WorkerLost(JobFailure):
    """The worker running this job was lost too many times."""

    error_code = "WORKER_LOST"
