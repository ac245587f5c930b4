"""One error envelope: {"error": "<message>", "errorCode": "<UPPER_SNAKE>"}. Every error
the app can answer is rendered here; views just raise."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from flask import Flask, Response, g, has_request_context
from werkzeug.exceptions import HTTPException

from queue_jobs.services.connections import DATABASE_UNAVAILABLE, DatabaseUnreachable
from queue_jobs.services.errors import DomainError, EmailTaken, QueueUnavailable
from webapp.schemas.responses import Error, dumped

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "BAD_REQUEST", 401: "AUTH_REQUIRED", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 429: "RATE_LIMITED",
}
# Integrity errors a client can cause, by constraint name (sql/migrations).
_CONSTRAINT_ERRORS: dict[str, type[DomainError]] = {
    "users_email_key": EmailTaken,
}
_HTTP_MESSAGES = {
    404: "Not found.", 405: "Method not allowed.",
    413: "The request body is larger than 1 MiB.",
}


def error_response(status: int, message: str, error_code: str,
                   headers: dict[str, str] | None = None, **extra: Any) -> Response:
    if has_request_context():
        g.error_code = error_code  # for the request's log line
    response = dumped(Error, {"error": message, "errorCode": error_code, **extra}, status)
    response.headers.update(headers or {})
    return response


def domain_error_response(error: DomainError) -> Response:
    return error_response(error.status, error.message, error.error_code, error.headers,
                          **error.extra)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(error: DomainError) -> Response:
        return domain_error_response(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        message = _HTTP_MESSAGES.get(status, error.description or error.name)
        response = error_response(status, message, _HTTP_CODES.get(status, "HTTP_ERROR"))
        for name, value in error.get_headers():  # e.g. Allow on a 405 (RFC 9110)
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(psycopg.errors.IntegrityError)
    def integrity_error(error: psycopg.errors.IntegrityError) -> Response:
        known = _CONSTRAINT_ERRORS.get(error.diag.constraint_name or "")
        if known is None:
            return unexpected(error)
        return domain_error(known())

    def database_down(error: Exception) -> Response:
        if not isinstance(error, DatabaseUnreachable):  # else the pool logged the outage once
            log.warning("database unavailable: %s", error)
        return domain_error_response(QueueUnavailable())

    for unavailable_error in DATABASE_UNAVAILABLE:
        app.register_error_handler(unavailable_error, database_down)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "Internal server error.", "INTERNAL_ERROR")
