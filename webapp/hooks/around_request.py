"""What the app does around every request: a request id, one JSON line
(queue_jobs.observability.logs), the latency histogram (webapp.views.metrics) and the CORS headers.

The request id joins the request line with the job events written while handling it: the
caller's X-Request-Id if it looks like one (a proxy or a frontend may set it), else a
fresh one; either way it is echoed in the response.

A status poll that is answered (200 or 304) writes its line at DEBUG level: a frontend
polls every job every second or two, and those lines would drown every other one (the
latency histogram still counts each poll). A poll that fails (401, 404, 429, 5xx) is
written at INFO, as every other request is.

All of it runs in one before_request, one after_request and one teardown hook, each
reading `request` and `g` once: Flask calls every hook through `ensure_sync`, and every
read of `request` or `g` is a context-local lookup, a visible share of a poll that
answers 304.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time

from flask import Flask, Request, Response, g, request
from flask.ctx import _AppCtxGlobals

from queue_jobs.observability import logs
from queue_jobs.observability.logs import REQUEST_ID
from webapp.config import WebConfig
from webapp.views import metrics

log = logging.getLogger("webapp.request")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
STATUS_ROUTE = "/api/v1/jobs/<job_id>/status"  # as Flask names the rule
_POLL_ROUTES = frozenset({STATUS_ROUTE})
_CORS_HEADERS = {
    "Access-Control-Allow-Headers":
        "Authorization, Content-Type, If-None-Match, Idempotency-Key, x-session-id",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Expose-Headers":
        "ETag, Retry-After, Idempotent-Replayed, X-Session-Id, Deprecation, Link",
}


def init_around_request(app: Flask, config: WebConfig) -> None:
    origins, write_line = config.cors_origins, config.request_log

    @app.before_request
    def begin() -> None:
        request_id = request_id_for(_current_request().headers.get("X-Request-Id", ""))
        state = _current_g()
        state.request_id_token = REQUEST_ID.set(request_id)
        state.request_started = time.perf_counter()

    @app.after_request
    def end(response: Response) -> Response:
        req, state = _current_request(), _current_g()
        _add_cors(req, response, origins)
        started = state.get("request_started")
        if started is None:  # before_request did not run (an early error)
            return response
        seconds = time.perf_counter() - started
        # The route's pattern, not the path: ids and tokens stay out of the log and the
        # histogram's label set.
        route = req.url_rule.rule if req.url_rule else "unmatched"
        record_request(req.method, route, response.status_code, seconds, write_line,
                       owner_kind=state.get("owner_kind"), error_code=state.get("error_code"))
        request_id = REQUEST_ID.get()
        if request_id is not None:  # set by begin, reset at teardown
            response.headers["X-Request-Id"] = request_id
        return response

    @app.teardown_request
    def forget(_exc: BaseException | None) -> None:
        g.pop("request_started", None)  # g may outlive the request (an outer app context)
        token = g.pop("request_id_token", None)
        if token is not None:
            REQUEST_ID.reset(token)


class _RequestIds:
    """Unique request ids without a system call each (secrets.token_hex reads urandom, a
    visible share of a 304): a random prefix per process, then a counter. 32 hex digits,
    as before. A forked child draws its own prefix."""

    def __init__(self) -> None:
        self._renew()
        os.register_at_fork(after_in_child=self._renew)

    def _renew(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()  # next() is atomic: threads share it

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


_new_request_id = _RequestIds()


def record_request(method: str, route: str, status: int, seconds: float, write_line: bool,
                   *, owner_kind: str | None, error_code: str | None) -> None:
    """A finished request in the latency histogram and, with write_line, its log line
    (an answered status poll at DEBUG, see the module's docstring). The line carries the
    request id that REQUEST_ID holds."""
    metrics.observe_request(method, route, status, seconds)
    if write_line:
        answered_poll = status in (200, 304) and route in _POLL_ROUTES
        logs.event(log, "request", logging.DEBUG if answered_poll else logging.INFO,
                   method=method, route=route, status=status,
                   durationMs=round(seconds * 1000, 1), ownerKind=owner_kind,
                   errorCode=error_code)


def request_id_for(given: str) -> str:
    """The caller's X-Request-Id if it looks like one, else a fresh one."""
    return given if _REQUEST_ID.fullmatch(given) else _new_request_id()


def cors_headers(origin: str, origins: tuple[str, ...]) -> list[tuple[str, str]]:
    """The CORS headers of an answer to `origin` (none if it is not allowed), Vary
    included."""
    if "*" not in origins and origin not in origins:
        return []
    return [("Access-Control-Allow-Origin", "*" if "*" in origins else origin),
            *_CORS_HEADERS.items(), ("Vary", "Origin")]


def _add_cors(req: Request, response: Response, origins: tuple[str, ...]) -> None:
    origin = req.headers.get("Origin")
    if origin:
        for name, value in cors_headers(origin, origins):
            if name == "Vary":
                response.vary.add(value)
            else:
                response.headers[name] = value


# The objects behind the proxies (LocalProxy._get_current_object). Flask types `request`
# as a Request, hence the ignore; `g`'s type answers Any for every attribute, hence none.
def _current_request() -> Request:
    current: Request = request._get_current_object()  # type: ignore[attr-defined]
    return current


def _current_g() -> _AppCtxGlobals:
    current: _AppCtxGlobals = g._get_current_object()
    return current
