"""Accounts: register, login, refresh, me. Thin views over queue_jobs.services.accounts.

Access tokens are short-lived (JWT_ACCESS_TTL_S, 15 min), refresh tokens long-lived
(JWT_REFRESH_TTL_S, 30 days). Sending the x-session-id with register, login or me hands
the session's organizations to the user (the "analyze, then sign up" funnel).
"""

from __future__ import annotations

from flask import Blueprint, Response, request
from flask_jwt_extended import create_access_token, create_refresh_token

from queue_jobs.models import Owner, User
from queue_jobs.services import accounts, organizations
from queue_jobs.services.errors import InvalidCredentials
from webapp.context import client_address, db_pool, web_config
from webapp.hooks.identity import current_owner, session_from_header, user_from_refresh_token
from webapp.schemas.inputs import LoginRequest, RegisterRequest, load_json_body
from webapp.schemas.responses import AccessToken, Me, SignedIn, dumped

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth")


def _signed_in(user: User, status: int = 200) -> Response:
    identity = str(user.id)
    return dumped(SignedIn, {"accessToken": create_access_token(identity=identity),
                             "refreshToken": create_refresh_token(identity=identity),
                             "user": user}, status)


@bp.post("/register")
def register() -> Response:
    body = load_json_body(request, RegisterRequest())
    session_id = session_from_header()
    with db_pool().connection() as conn:
        accounts.count_registration(conn, client_address(), web_config().auth_throttle)
    password_hash = accounts.hash_password(body["password"])  # slow: outside a transaction
    with db_pool().connection() as conn:
        user = accounts.register(conn, body["email"], password_hash, body.get("name"))
        organizations.claim_session_organizations(conn, Owner(user.id, session_id))
    return _signed_in(user, 201)


@bp.post("/login")
def login() -> Response:
    body = load_json_body(request, LoginRequest())
    session_id = session_from_header()
    with db_pool().connection() as conn:  # committed: the attempt counts from here on
        attempt = accounts.begin_login(conn, body["email"], client_address(),
                                       web_config().auth_throttle)
    password_hash = accounts.verify_password(attempt, body["password"])  # slow
    if password_hash is None:
        raise InvalidCredentials()
    with db_pool().connection() as conn:
        user = accounts.finish_login(conn, attempt, password_hash)
        organizations.claim_session_organizations(conn, Owner(user.id, session_id))
    return _signed_in(user)


@bp.post("/refresh")
def refresh() -> Response:
    user_id = user_from_refresh_token()
    with db_pool().connection() as conn:
        user = accounts.existing_user(conn, user_id)
    return dumped(AccessToken, {"accessToken": create_access_token(identity=str(user.id))})


@bp.get("/me")
def me() -> Response:
    owner = current_owner(user_required=True, account_checked_by_service=True)  # just below
    assert owner.user_id is not None  # user_required
    with db_pool().connection() as conn:
        user = accounts.existing_user(conn, owner.user_id)
        owned = organizations.user_organizations(conn, owner)
    return dumped(Me, {"user": user, "organizations": owned})
