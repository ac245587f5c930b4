"""OPS_TOKEN, the one bearer token of everything under /ops (the page's data, the ops API):
absent, those routes answer 404 as if they did not exist; present, a request must send it
as 'Authorization: Bearer <OPS_TOKEN>'."""

from __future__ import annotations

import hmac

from flask import abort, request

from queue_jobs.services.errors import DomainError
from webapp.context import web_config


class OpsTokenInvalid(DomainError):
    """Send the ops token as 'Authorization: Bearer <OPS_TOKEN>'."""

    status = 401
    error_code = "OPS_TOKEN_INVALID"

    def __init__(self) -> None:
        super().__init__()
        self.headers["WWW-Authenticate"] = 'Bearer realm="ops"'


def only_when_configured() -> None:
    """A blueprint's before_request: 404 unless the deployment sets OPS_TOKEN."""
    if not web_config().ops_token:
        abort(404)


def check_ops_token() -> None:
    expected = web_config().ops_token or ""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Bytes, not str: compare_digest refuses non-ASCII strings, and a header can hold any
    # Latin-1 character.
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             expected.encode()):
        raise OpsTokenInvalid()
