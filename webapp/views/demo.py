"""The demo page at / and the reference browser client of the jobs API.

Static files: the app is `Flask("webapp")`, whose default static folder is
`webapp/static`, served by Flask itself at `/static/<file>` (endpoint `static`):
`/static/jobs-client.js` (the reusable client, an ES module), `/static/demo.js`,
`/static/demo.css` and `/static/index.html`. This blueprint adds `GET /` and makes the
static answers dependable: JavaScript always as `text/javascript` (RFC 9239; the
`mimetypes` table depends on the host) and every asset with `Cache-Control: no-cache`,
so a deploy is picked up at once (unchanged files still answer 304).
"""

from __future__ import annotations

import functools
from typing import cast

from flask import Blueprint, Response, current_app
from flask.blueprints import BlueprintSetupState

bp = Blueprint("demo", __name__)

# The page loads only its own files and talks only to this origin; images arrive as
# blob: URLs made by jobs-client.js (they need the identity headers).
PAGE_POLICY = ("default-src 'self'; img-src 'self' blob:; connect-src 'self'; "
               "object-src 'none'; base-uri 'none'; form-action 'self'; "
               "frame-ancestors 'none'")


@bp.get("/")
def page() -> Response:
    return _asset_headers(current_app.send_static_file("index.html"), "index.html")


def _static_with_headers(state: BlueprintSetupState) -> None:
    """Flask's own static view, answering with the headers above (wrapped rather than
    checked in an after_request hook, which every status poll would pay for)."""
    serve = state.app.view_functions["static"]

    @functools.wraps(serve)
    def static(filename: str) -> Response:
        response = cast(Response, serve(filename=filename))  # send_static_file answers one
        if response.status_code < 400:  # 200, 304, 206
            _asset_headers(response, filename)
        return response

    state.app.view_functions["static"] = static


bp.record_once(_static_with_headers)  # once per app


def _asset_headers(response: Response, name: str) -> Response:
    if name.endswith((".js", ".mjs")) and response.status_code == 200:
        response.mimetype = "text/javascript"
    if name.endswith(".html"):
        response.headers["Content-Security-Policy"] = PAGE_POLICY
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
