"""One JSON line per request (queue_jobs.logs), and a request id to join it with the job
events written while handling it: the caller's X-Request-Id if it looks like one (a proxy
or a frontend may set it), else a fresh one; either way it is echoed in the response."""

from __future__ import annotations

import logging
import re
import secrets
import time

from flask import Flask, Response, g, request

from queue_jobs import logs
from queue_jobs.logs import REQUEST_ID

log = logging.getLogger("webapp.request")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def init_request_log(app: Flask, *, enabled: bool) -> None:
    @app.before_request
    def begin() -> None:
        given = request.headers.get("X-Request-Id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else secrets.token_hex(16)
        g.request_id_token = REQUEST_ID.set(request_id)
        g.request_started = time.perf_counter()

    @app.after_request
    def end(response: Response) -> Response:
        request_id = REQUEST_ID.get()
        if request_id is None:  # before_request did not run (an early error)
            return response
        response.headers["X-Request-Id"] = request_id
        if enabled:
            logs.event(
                log, "request", method=request.method,
                # the route's pattern: ids and tokens in paths stay out of the log
                route=request.url_rule.rule if request.url_rule else "unmatched",
                status=response.status_code,
                durationMs=round((time.perf_counter() - g.request_started) * 1000, 1),
                ownerKind=g.get("owner_kind"), errorCode=g.get("error_code"))
        return response

    @app.teardown_request
    def forget(_exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            REQUEST_ID.reset(token)
