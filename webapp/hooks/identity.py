"""Who is calling: a user (Bearer JWT, verified by flask-jwt-extended) or else an anonymous
session (x-session-id). A bad token is 401 even when a session id is also sent, and so is
a valid token whose account no longer exists (deleted since it was issued).

That last check is a lookup of the users table. current_owner makes it unless the view
says that its service makes it in its own statement (`account_checked_by_service`): the
status poll and the job list, the hottest paths, do, and pay no round trip for it.
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request
from flask_jwt_extended import JWTManager, get_jwt_identity, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import ExpiredSignatureError, InvalidTokenError

from queue_jobs.models import Owner
from queue_jobs.services import accounts, connections
from queue_jobs.services.errors import (
    AuthRequired,
    SessionInvalid,
    TokenExpired,
    TokenInvalid,
)
from webapp.context import db_pool
from webapp.hooks.errors import domain_error_response

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,128}$")


def current_owner(*, user_required: bool = False,
                  account_checked_by_service: bool = False) -> Owner:
    user_id = _user_from_token()
    session_id = session_from_header()
    if user_id is None and (user_required or session_id is None):
        raise AuthRequired("Sign in first." if user_required else None)
    if user_id is not None and not account_checked_by_service:
        with connections.autocommit(db_pool()) as conn:
            accounts.existing_user(conn, user_id)
    owner = Owner(user_id, session_id)
    g.owner_kind = owner.kind  # for the request's log line
    return owner


def session_from_header() -> str | None:
    session_id = request.headers.get("x-session-id")
    if session_id is not None and not SESSION_ID.fullmatch(session_id):
        raise SessionInvalid()
    return session_id


def user_from_refresh_token() -> uuid.UUID:
    if "Authorization" not in request.headers:
        raise AuthRequired("Send the refresh token as 'Authorization: Bearer <refreshToken>'.")
    return _verified_identity(refresh=True)


def _user_from_token() -> uuid.UUID | None:
    if "Authorization" not in request.headers:
        return None
    return _verified_identity(refresh=False)


def _verified_identity(*, refresh: bool) -> uuid.UUID:
    """The user id of a valid token of the wanted kind (an access token is no refresh
    token and vice versa), else 401."""
    try:
        verify_jwt_in_request(refresh=refresh)
        return uuid.UUID(str(get_jwt_identity()))
    except ExpiredSignatureError:
        raise TokenExpired() from None
    except (InvalidTokenError, JWTExtendedException, ValueError):
        raise TokenInvalid("The refresh token is invalid." if refresh else None) from None


def init_jwt(app: Flask) -> None:
    jwt = JWTManager(app)

    # flask-jwt-extended answers {"msg"} with 401/422 by default. Views verify tokens
    # through _verified_identity, which raises our errors first; should one of its own
    # handlers run anyway, it answers the contract's envelope too.
    @jwt.invalid_token_loader
    @jwt.unauthorized_loader
    def invalid_token(reason: str) -> Response:
        return domain_error_response(TokenInvalid())

    @jwt.expired_token_loader
    def expired_token(header: dict, payload: dict) -> Response:
        return domain_error_response(TokenExpired())

    @jwt.token_verification_failed_loader
    @jwt.revoked_token_loader
    @jwt.needs_fresh_token_loader
    @jwt.user_lookup_error_loader
    def rejected_token(header: dict, payload: dict) -> Response:
        return domain_error_response(TokenInvalid())
