"""Errors a client request can run into. The docstring is the message the client sees;
`status` and `error_code` are what the API answers (webapp/hooks/errors.py renders them)."""

from __future__ import annotations

import random
import uuid
from typing import Any

# A 503's Retry-After, drawn uniformly from these seconds: the clients an outage turned
# away together come back spread over the window, not in one wave at the same second.
# From 1 s: each process probes PostgreSQL twice a second (queue_jobs.db.connections), so
# a retry a second later already meets a recovered database.
UNAVAILABLE_RETRY_AFTER_S = (1, 5)


class DomainError(Exception):
    """Request failed."""

    status = 400
    error_code = "BAD_REQUEST"

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        super().__init__(message or (self.__doc__ or "").strip())
        self.extra = extra  # more JSON fields for the error body (e.g. "fields")
        self.headers: dict[str, str] = {}

    @property
    def message(self) -> str:
        return str(self)


class ValidationFailed(DomainError):
    """The request is invalid."""

    status = 400
    error_code = "VALIDATION_ERROR"


class AuthRequired(DomainError):
    """Send a Bearer token or an x-session-id header."""

    status = 401
    error_code = "AUTH_REQUIRED"


class SessionInvalid(DomainError):
    """x-session-id must be 8 to 128 characters of A-Z, a-z, 0-9, '_' or '-'."""

    status = 401
    error_code = "SESSION_INVALID"


class TokenInvalid(DomainError):
    """The access token is invalid."""

    status = 401
    error_code = "TOKEN_INVALID"


class TokenExpired(DomainError):
    """The access token has expired."""

    status = 401
    error_code = "TOKEN_EXPIRED"


class JobNotFound(DomainError):
    """Job not found."""

    status = 404
    error_code = "JOB_NOT_FOUND"


class JobTypeNotFound(DomainError):
    """No such job type."""

    status = 404
    error_code = "JOB_TYPE_NOT_FOUND"


class ImageNotFound(DomainError):
    """Image not found."""

    status = 404
    error_code = "IMAGE_NOT_FOUND"


class JobNotRetryable(DomainError):
    """Only a failed job can be retried (a deprecated per-step call: by calling it again)."""

    status = 409
    error_code = "JOB_NOT_RETRYABLE"


class JobNotCancellable(DomainError):
    """The job has already finished."""

    status = 409
    error_code = "JOB_NOT_CANCELLABLE"


class OrganizationNotFound(DomainError):
    """Organization not found."""

    status = 404
    error_code = "ORGANIZATION_NOT_FOUND"


class PostNotFound(DomainError):
    """Post not found."""

    status = 404
    error_code = "POST_NOT_FOUND"


class EmailTaken(DomainError):
    """An account with this email already exists."""

    status = 409
    error_code = "EMAIL_TAKEN"


class InvalidCredentials(DomainError):
    """Wrong email or password."""

    status = 401
    error_code = "INVALID_CREDENTIALS"


class IdempotencyKeyReused(DomainError):
    """This Idempotency-Key was already used with a different request."""

    status = 422
    error_code = "IDEMPOTENCY_KEY_REUSED"


class RateLimited(DomainError):
    """Too many requests; try again later."""

    status = 429
    error_code = "RATE_LIMITED"

    def __init__(self, message: str | None = None, *, retry_after_s: int, **extra: Any) -> None:
        super().__init__(message, retryAfter=retry_after_s, **extra)
        self.headers["Retry-After"] = str(retry_after_s)


class _ServiceUnavailable(DomainError):
    """503: come back soon, at a random 1-5 s so that clients turned away together do not
    come back together."""

    status = 503

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.headers["Retry-After"] = str(random.randint(*UNAVAILABLE_RETRY_AFTER_S))


class QueueUnavailable(_ServiceUnavailable):
    """The job store is unavailable; try again shortly."""

    error_code = "QUEUE_UNAVAILABLE"


class StreamsRefused(_ServiceUnavailable):
    """This server holds as many event streams as it may: poll /status instead."""

    error_code = "STREAMS_UNAVAILABLE"


def parse_id(text: str, missing: type[DomainError]) -> uuid.UUID:
    """An id from a URL; a malformed one is simply not found (contract §4)."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise missing() from None
