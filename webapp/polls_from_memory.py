"""Status polls this process can answer from memory, answered before Flask.

The busiest request a frontend sends is a status poll whose answer the live feed already
holds (queue_jobs.services.live: an unchanged finished job's 304, an active job's
document). Through Flask, such a poll spends more time in its request context, routing and
hooks than in the answer itself; here it is one function of the WSGI environ.

It answers only what it can answer exactly as the view would (webapp.views.jobs.job_status,
with webapp.hooks.around_request's request id, CORS, latency histogram and log line), and
hands every other request to Flask untouched:
- a GET of /api/v1/jobs/<id>/status from an anonymous session whose x-session-id is
  well-formed (a Bearer token is verified by flask-jwt-extended, in Flask's request; a
  bad session id gets Flask's error);
- whose answer the live feed gives without the database (status_from_memory: known,
  unchanged, visible to this owner; anything else, such as a 404, is read by the view).
A fault in it is logged and the poll handed to Flask, which answers it as before.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.http import parse_etags, quote_etag

from queue_jobs.models import Owner
from queue_jobs.observability.logs import REQUEST_ID
from queue_jobs.services import jobs
from queue_jobs.services.errors import JobNotFound
from queue_jobs.services.live import LiveFeed
from webapp.hooks import around_request
from webapp.hooks.identity import SESSION_ID

log = logging.getLogger(__name__)
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_STATUS_PATH = re.compile(r"^/api/v1/jobs/([^/]+)/status$")
_STATUS_LINES = {200: "200 OK", 304: "304 NOT MODIFIED"}


class PollsFromMemory:
    """WSGI middleware in front of the Flask app's wsgi_app (create_app installs it)."""

    def __init__(self, app: WsgiApp, feed: LiveFeed, cors_origins: tuple[str, ...],
                 write_line: bool) -> None:
        self.app = app  # Flask's wsgi_app: every other request
        self._feed = feed
        self._origins = cors_origins
        self._write_line = write_line

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        try:
            answer = self._answer(environ)
        except Exception:  # a fault here must not cost the poll: the view answers it
            log.exception("status poll from memory failed; answered through Flask")
            answer = None
        if answer is None:
            return self.app(environ, start_response)
        status, body, headers = answer
        request_id = around_request.request_id_for(environ.get("HTTP_X_REQUEST_ID", ""))
        headers.append(("X-Request-Id", request_id))
        origin = environ.get("HTTP_ORIGIN")
        if origin:
            headers += around_request.cors_headers(origin, self._origins)
        start_response(_STATUS_LINES[status], headers)
        token = REQUEST_ID.set(request_id)  # for the log line, as Flask's hooks set it
        try:
            around_request.record_request(
                "GET", around_request.STATUS_ROUTE, status, time.perf_counter() - started,
                self._write_line, owner_kind="session", error_code=None)
        finally:
            REQUEST_ID.reset(token)
        return [body]

    def _answer(self, environ: dict[str, Any]
                ) -> tuple[int, bytes, list[tuple[str, str]]] | None:
        """(status, body, headers) from memory, or None: Flask answers."""
        if environ.get("REQUEST_METHOD") != "GET" or "HTTP_AUTHORIZATION" in environ:
            return None
        path = _STATUS_PATH.match(environ.get("PATH_INFO", ""))
        session_id = environ.get("HTTP_X_SESSION_ID")
        if path is None or session_id is None or not SESSION_ID.fullmatch(session_id):
            return None
        try:
            job_id = jobs.parse_job_id(path.group(1))
        except JobNotFound:
            return None
        known = parse_etags(environ.get("HTTP_IF_NONE_MATCH"))
        answer = self._feed.status_from_memory(
            job_id, Owner(None, session_id), sorted(known.as_set(include_weak=True)),
            known.star_tag)
        if answer is None:
            return None
        headers = [("ETag", quote_etag(answer.etag)), ("Cache-Control", "no-cache")]
        if answer.body is None or known.contains_weak(answer.etag):
            return 304, b"", headers
        headers += [("Content-Type", "application/json"),
                    ("Content-Length", str(len(answer.body)))]
        return 200, answer.body, headers
