"""Accounts (contract §3, §4, §7): register, login, refresh, me, token verification and the
failed-login throttle, through the Flask app on a real PostgreSQL."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import jwt
import psycopg
import pytest
from flask_jwt_extended import jwt_required
from werkzeug.test import TestResponse

from queue_jobs.services.accounts import AuthThrottle
from tests.integration.support import ApiClient, new_session
from webapp import create_app

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/auth/me"
JOBS = "/api/v1/jobs/"
PASSWORD = "Sup3r-secret-passphrase!"
WRONG_PASSWORD = "not-the-passphrase"
OTHER_KEY = "another-secret-key-that-is-long-enough-for-hs256"


def assert_error(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    """The contract's envelope, never flask-jwt-extended's {"msg"}."""
    assert response.status_code == status, response.data
    body = response.get_json()
    assert isinstance(body, dict), response.data
    assert "msg" not in body, body
    assert body["errorCode"] == code and isinstance(body["error"], str) and body["error"], body
    return body


def signed_in_body(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.data
    body = response.get_json()
    assert set(body) == {"accessToken", "refreshToken", "user"}, body
    assert isinstance(body["accessToken"], str) and body["accessToken"]
    assert isinstance(body["refreshToken"], str) and body["refreshToken"]
    assert set(body["user"]) == {"id", "email", "name"}, body
    uuid.UUID(body["user"]["id"])
    return dict(body)


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def register(api: ApiClient, email: str, password: str = PASSWORD,
             **extra: Any) -> TestResponse:
    return api.http.post(REGISTER, json={"email": email, "password": password, **extra})


def login(api: ApiClient, email: str, password: str) -> TestResponse:
    return api.http.post(LOGIN, json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- register -------------------------------------------------------------------------------

def test_register_answers_201_with_tokens_and_user(api: ApiClient) -> None:
    email = unique_email()
    body = signed_in_body(register(api, email, name="Ada Lovelace"), 201)
    assert body["user"]["email"] == email
    assert body["user"]["name"] == "Ada Lovelace"


def test_register_stores_the_email_lower_cased(api: ApiClient,
                                               db: psycopg.Connection[Any]) -> None:
    body = signed_in_body(register(api, "Ada@Example.COM"), 201)
    assert body["user"]["email"] == "ada@example.com"
    row = db.execute("SELECT email FROM users WHERE id = %s",
                     (uuid.UUID(body["user"]["id"]),)).fetchone()
    assert row == ("ada@example.com",)


def test_register_trims_and_lower_cases_a_padded_email(api: ApiClient,
                                                       db: psycopg.Connection[Any]) -> None:
    body = signed_in_body(register(api, "  Ada@Example.COM "), 201)
    assert body["user"]["email"] == "ada@example.com"
    assert db.execute("SELECT email FROM users").fetchall() == [("ada@example.com",)]


def test_register_stores_an_argon2id_hash_not_the_password(
        api: ApiClient, db: psycopg.Connection[Any]) -> None:
    body = signed_in_body(register(api, unique_email()), 201)
    row = db.execute("SELECT password_hash FROM users WHERE id = %s",
                     (uuid.UUID(body["user"]["id"]),)).fetchone()
    assert row is not None
    password_hash = row[0]
    assert password_hash.startswith("$argon2id$"), password_hash
    assert PASSWORD not in password_hash


def test_register_name_is_optional_and_null_when_absent(api: ApiClient) -> None:
    body = signed_in_body(register(api, unique_email()), 201)
    assert body["user"]["name"] is None


def test_register_a_taken_email_is_409(api: ApiClient, db: psycopg.Connection[Any]) -> None:
    signed_in_body(register(api, "grace@example.com"), 201)
    assert_error(register(api, "grace@example.com", "another-password"), 409, "EMAIL_TAKEN")
    assert_error(register(api, "Grace@EXAMPLE.com"), 409, "EMAIL_TAKEN")
    assert db.execute("SELECT count(*) FROM users").fetchone() == (1,)


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@example.com", "", 42])
def test_register_a_bad_email_is_400_naming_email(api: ApiClient, email: Any) -> None:
    body = assert_error(register(api, email), 400, "VALIDATION_ERROR")
    assert "email" in body["fields"], body


def test_register_a_seven_character_password_is_400_naming_password(
        api: ApiClient, db: psycopg.Connection[Any]) -> None:
    body = assert_error(register(api, unique_email(), "1234567"), 400, "VALIDATION_ERROR")
    assert "password" in body["fields"], body
    assert "1234567" not in json.dumps(body)
    assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)
    # Eight characters is the minimum that is accepted.
    signed_in_body(register(api, unique_email(), "12345678"), 201)


@pytest.mark.parametrize(("body", "bad_fields"), [
    ({}, {"email", "password"}),
    ({"email": "a@example.com"}, {"password"}),
    ({"password": PASSWORD}, {"email"}),
    ({"email": "a@example.com", "password": PASSWORD, "nickname": "ada"}, {"nickname"}),
])
def test_register_missing_or_unknown_fields_are_400(api: ApiClient, body: dict[str, Any],
                                                    bad_fields: set[str]) -> None:
    error = assert_error(api.http.post(REGISTER, json=body), 400, "VALIDATION_ERROR")
    assert bad_fields <= set(error["fields"]), error


@pytest.mark.parametrize("path", [REGISTER, LOGIN])
@pytest.mark.parametrize(("raw", "content_type"), [
    (b"{not json", "application/json"),
    (b"[1, 2]", "application/json"),
    (b"\"text\"", "application/json"),
    (b"", "application/json"),
    (b"email=a@example.com&password=12345678", "application/x-www-form-urlencoded"),
])
def test_unusable_bodies_are_400(api: ApiClient, path: str, raw: bytes,
                                 content_type: str) -> None:
    assert_error(api.http.post(path, data=raw, content_type=content_type), 400,
                 "VALIDATION_ERROR")


@pytest.mark.parametrize("body", [
    {}, {"email": "a@example.com"}, {"password": PASSWORD},
    {"email": "a@example.com", "password": PASSWORD, "remember": True},
])
def test_login_missing_or_unknown_fields_are_400(api: ApiClient, body: dict[str, Any]) -> None:
    assert_error(api.http.post(LOGIN, json=body), 400, "VALIDATION_ERROR")


# --- login ----------------------------------------------------------------------------------

def test_login_with_the_right_password_answers_the_register_body(api: ApiClient) -> None:
    email = unique_email()
    registered = signed_in_body(register(api, email, name="Ada"), 201)
    logged_in = signed_in_body(login(api, email, PASSWORD), 200)
    assert logged_in["user"] == registered["user"]
    me = api.http.get(ME, headers=bearer(logged_in["accessToken"]))
    assert me.status_code == 200, me.data
    assert me.get_json()["user"] == registered["user"]


def test_login_wrong_password_and_unknown_email_are_the_same_401(api: ApiClient) -> None:
    email = unique_email()
    signed_in_body(register(api, email), 201)
    wrong_password = assert_error(login(api, email, WRONG_PASSWORD), 401, "INVALID_CREDENTIALS")
    unknown_email = assert_error(login(api, unique_email(), PASSWORD), 401,
                                 "INVALID_CREDENTIALS")
    assert wrong_password == unknown_email


def test_login_email_is_case_insensitive(api: ApiClient) -> None:
    registered = signed_in_body(register(api, "linus@example.com"), 201)
    for typed in ("LINUS@example.com", "Linus@Example.Com", "  linus@example.com "):
        assert signed_in_body(login(api, typed, PASSWORD), 200)["user"] == registered["user"]


# --- refresh and me -------------------------------------------------------------------------

def test_refresh_token_gives_a_working_access_token(api: ApiClient) -> None:
    registered = signed_in_body(register(api, unique_email()), 201)
    response = api.http.post(REFRESH, headers=bearer(registered["refreshToken"]))
    assert response.status_code == 200, response.data
    body = response.get_json()
    assert set(body) == {"accessToken"}, body
    me = api.http.get(ME, headers=bearer(body["accessToken"]))
    assert me.status_code == 200, me.data
    assert me.get_json()["user"] == registered["user"]


def test_an_access_token_is_no_refresh_token(api: ApiClient) -> None:
    registered = signed_in_body(register(api, unique_email()), 201)
    assert_error(api.http.post(REFRESH, headers=bearer(registered["accessToken"])), 401,
                 "TOKEN_INVALID")


def test_a_refresh_token_is_no_access_token(api: ApiClient) -> None:
    registered = signed_in_body(register(api, unique_email()), 201)
    refresh = bearer(registered["refreshToken"])
    assert_error(api.http.get(ME, headers=refresh), 401, "TOKEN_INVALID")
    assert_error(api.http.get(JOBS, headers={**refresh, **new_session()}), 401,
                 "TOKEN_INVALID")


def test_refresh_without_authorization_is_401(api: ApiClient) -> None:
    assert_error(api.http.post(REFRESH), 401, "AUTH_REQUIRED")


def test_me_for_a_fresh_user_has_no_organizations(api: ApiClient) -> None:
    registered = signed_in_body(register(api, unique_email(), name="Ada"), 201)
    response = api.http.get(ME, headers=bearer(registered["accessToken"]))
    assert response.status_code == 200, response.data
    assert response.get_json() == {"user": registered["user"], "organizations": []}


def test_me_without_a_token_is_401_auth_required(api: ApiClient) -> None:
    assert_error(api.http.get(ME), 401, "AUTH_REQUIRED")
    # A session id is no account.
    assert_error(api.http.get(ME, headers=new_session()), 401, "AUTH_REQUIRED")


def test_a_valid_token_for_an_unknown_user_is_401_token_invalid(api: ApiClient) -> None:
    assert_error(api.http.get(ME, headers=api.token_for(account=False)), 401, "TOKEN_INVALID")


# --- forged, expired and garbage tokens -----------------------------------------------------

def _tampered_payload(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(_unb64url(payload))
    claims["sub"] = str(uuid.uuid4())
    return ".".join([header, _b64url(json.dumps(claims).encode()), signature])


def _signed_with_another_key(token: str) -> str:
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(claims, OTHER_KEY, algorithm="HS256")


def _unsigned(token: str) -> str:
    claims = jwt.decode(token, options={"verify_signature": False})
    header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64url(json.dumps(claims).encode())}."


BAD_TOKENS: dict[str, Callable[[str], str]] = {
    "payload-changed": _tampered_payload,
    "other-key": _signed_with_another_key,
    "alg-none": _unsigned,
    "garbage": lambda _: "abc",
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_a_bad_token_is_401_token_invalid_even_with_a_session(api: ApiClient,
                                                              kind: str) -> None:
    registered = signed_in_body(register(api, unique_email()), 201)
    # The genuine token works: only the alteration is refused.
    assert api.http.get(ME, headers=bearer(registered["accessToken"])).status_code == 200
    headers = bearer(BAD_TOKENS[kind](registered["accessToken"]))
    assert_error(api.http.get(ME, headers=headers), 401, "TOKEN_INVALID")
    assert_error(api.http.get(ME, headers={**headers, **new_session()}), 401, "TOKEN_INVALID")
    assert_error(api.http.get(JOBS, headers={**headers, **new_session()}), 401,
                 "TOKEN_INVALID")


def test_an_expired_token_is_401_token_expired_even_with_a_session(api: ApiClient) -> None:
    registered = signed_in_body(register(api, unique_email()), 201)
    expired = api.token_for(uuid.UUID(registered["user"]["id"]),
                            expires=timedelta(seconds=-1))
    assert_error(api.http.get(ME, headers=expired), 401, "TOKEN_EXPIRED")
    assert_error(api.http.get(JOBS, headers={**expired, **new_session()}), 401,
                 "TOKEN_EXPIRED")
    # The same user with a live token is fine.
    live = api.token_for(uuid.UUID(registered["user"]["id"]))
    assert api.http.get(ME, headers=live).status_code == 200


# --- failed-login throttle ------------------------------------------------------------------

def assert_rate_limited(response: TestResponse) -> None:
    assert_error(response, 429, "RATE_LIMITED")
    retry_after = response.headers.get("Retry-After")
    assert retry_after is not None and retry_after.isdigit(), response.headers
    assert 1 <= int(retry_after) <= 900, retry_after


def test_five_failures_for_one_email_refuse_even_the_right_password(api: ApiClient) -> None:
    email = unique_email()
    signed_in_body(register(api, email), 201)
    for _ in range(5):
        assert_error(login(api, email, WRONG_PASSWORD), 401, "INVALID_CREDENTIALS")
    assert_rate_limited(login(api, email, PASSWORD))
    assert_rate_limited(login(api, email.upper(), PASSWORD))  # the same account


def test_an_email_throttle_leaves_other_emails_from_the_same_client(api: ApiClient) -> None:
    victim, other = unique_email(), unique_email()
    signed_in_body(register(api, victim), 201)
    signed_in_body(register(api, other), 201)
    for _ in range(5):
        assert_error(login(api, victim, WRONG_PASSWORD), 401, "INVALID_CREDENTIALS")
    assert_rate_limited(login(api, victim, PASSWORD))
    signed_in_body(login(api, other, PASSWORD), 200)


def test_a_successful_login_resets_the_email_counter(api: ApiClient) -> None:
    email = unique_email()
    signed_in_body(register(api, email), 201)
    for _ in range(4):
        assert_error(login(api, email, WRONG_PASSWORD), 401, "INVALID_CREDENTIALS")
    signed_in_body(login(api, email, PASSWORD), 200)
    for _ in range(4):
        assert_error(login(api, email, WRONG_PASSWORD), 401, "INVALID_CREDENTIALS")
    signed_in_body(login(api, email, PASSWORD), 200)


def test_failures_over_many_emails_throttle_the_client_address(api: ApiClient,
                                                               db_url: str) -> None:
    # conftest's TEST_JWT_SECRET, read from the fixture's app (importing conftest would
    # make mypy check it too).
    client = ApiClient(create_app({
        "database_url": db_url, "jwt_secret_key": api.app.config["JWT_SECRET_KEY"],
        "auth_throttle": AuthThrottle(failures_per_email=100, failures_per_address=3)}))
    try:
        email = unique_email()
        signed_in_body(register(client, email), 201)
        for _ in range(3):
            assert_error(login(client, unique_email(), WRONG_PASSWORD), 401,
                         "INVALID_CREDENTIALS")
        # An account that never failed: refused all the same, by its address.
        assert_rate_limited(login(client, email, PASSWORD))
        assert_rate_limited(login(client, unique_email(), WRONG_PASSWORD))
    finally:
        client.close()


# --- the password is never echoed -----------------------------------------------------------

def test_no_response_echoes_the_password(api: ApiClient) -> None:
    email = unique_email()
    responses = [
        register(api, email, name="Ada"),
        register(api, email),  # 409
        register(api, "not-an-email"),  # 400
        login(api, email, PASSWORD),
        login(api, email, PASSWORD + "x"),  # 401
    ]
    assert [r.status_code for r in responses] == [201, 409, 400, 200, 401]
    for response in responses:
        assert PASSWORD not in response.get_data(as_text=True), response.data


# --- limits that hold under concurrency, and text PostgreSQL cannot store -----------------

@pytest.fixture
def throttled(api: ApiClient, db_url: str) -> Iterator[Callable[..., ApiClient]]:
    """An API whose AuthThrottle the test chooses."""
    clients: list[ApiClient] = []

    def make(**limits: int) -> ApiClient:
        client = ApiClient(create_app({
            "database_url": db_url, "jwt_secret_key": api.app.config["JWT_SECRET_KEY"],
            "auth_throttle": AuthThrottle(**limits)}))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_parallel_guesses_cannot_outrun_the_address_limit(
        throttled: Callable[..., ApiClient]) -> None:
    client = throttled(failures_per_email=100, failures_per_address=3)

    def guess(_: int) -> int:
        http = client.app.test_client()
        return http.post(LOGIN, json={"email": unique_email(),
                                      "password": WRONG_PASSWORD}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(guess, range(16)))
    assert statuses == [401] * 3 + [429] * 13


def test_parallel_guesses_at_one_email_are_counted_one_by_one(api: ApiClient) -> None:
    email = unique_email()
    signed_in_body(register(api, email), 201)

    def guess(_: int) -> int:
        http = api.app.test_client()
        return http.post(LOGIN, json={"email": email, "password": WRONG_PASSWORD}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(guess, range(12)))
    assert statuses == [401] * 5 + [429] * 7


def test_sign_ups_from_one_address_are_limited(throttled: Callable[..., ApiClient]) -> None:
    client = throttled(registrations_per_address=2)
    for _ in range(2):
        signed_in_body(register(client, unique_email()), 201)
    refused = register(client, unique_email())
    assert_error(refused, 429, "RATE_LIMITED")
    assert 3000 < int(refused.headers["Retry-After"]) <= 3600


def test_an_email_has_one_spelling_in_unicode(api: ApiClient) -> None:
    composed, decomposed = "jos\u00e9@example.com", "jose\u0301@example.com"
    signed_in_body(register(api, composed), 201)
    assert_error(register(api, decomposed), 409, "EMAIL_TAKEN")
    signed_in_body(login(api, decomposed.upper(), PASSWORD), 200)


@pytest.mark.parametrize(("path", "raw", "field"), [
    (REGISTER, b'{"email": "a@example.com", "password": "12345678\\ud800"}', "password"),
    (REGISTER, b'{"email": "a@example.com", "password": "12345678", "name": "A\\u0000"}',
     "name"),
    (LOGIN, b'{"email": "a\\u0000@example.com", "password": "12345678"}', "email"),
    (LOGIN, b'{"email": "a@example.com", "password": "\\udfff\\ud800"}', "password"),
])
def test_text_postgres_cannot_store_is_a_400_not_a_500(api: ApiClient, path: str, raw: bytes,
                                                       field: str) -> None:
    response = api.http.post(path, data=raw, content_type="application/json")
    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(body["fields"]) == {field}



def login_from(client: ApiClient, address: str, email: str, password: str) -> TestResponse:
    return client.http.post(LOGIN, json={"email": email, "password": password},
                            environ_base={"REMOTE_ADDR": address})


def test_a_strangers_guesses_do_not_lock_the_owner_out_of_their_own_address(
        api: ApiClient) -> None:
    email = unique_email()
    signed_in_body(register(api, email), 201)
    for _ in range(5):
        assert_error(login_from(api, "203.0.113.9", email, WRONG_PASSWORD), 401,
                     "INVALID_CREDENTIALS")
    assert_rate_limited(login_from(api, "203.0.113.9", email, PASSWORD))
    signed_in_body(login_from(api, "198.51.100.7", email, PASSWORD), 200)


def test_guesses_at_one_email_from_many_addresses_are_limited_too(
        throttled: Callable[..., ApiClient]) -> None:
    client = throttled(failures_per_email=3)
    email = unique_email()
    signed_in_body(register(client, email), 201)
    for index in range(3):
        assert_error(login_from(client, f"203.0.113.{index}", email, WRONG_PASSWORD), 401,
                     "INVALID_CREDENTIALS")
    assert_rate_limited(login_from(client, "203.0.113.99", email, WRONG_PASSWORD))
    # A success from an address that never failed does not count as a failure.
    other = unique_email()
    signed_in_body(register(client, other), 201)
    for _ in range(5):
        signed_in_body(login_from(client, "198.51.100.1", other, PASSWORD), 200)


def test_flask_jwt_extendeds_own_answers_are_the_contracts_envelope(
        api: ApiClient, db_url: str) -> None:
    """Our views verify tokens themselves; a view using @jwt_required (its own error path)
    must still answer the envelope, never {"msg"} or 422."""
    app = create_app({"database_url": db_url, "jwt_secret_key": api.app.config["JWT_SECRET_KEY"]})
    app.add_url_rule("/probe", "probe", jwt_required()(lambda: "ok"))
    client = ApiClient(app)
    try:
        user_id = uuid.uuid4()
        assert client.http.get("/probe", headers=api.token_for(user_id)).data == b"ok"
        assert_error(client.http.get("/probe"), 401, "TOKEN_INVALID")
        assert_error(client.http.get("/probe", headers=bearer("abc")), 401, "TOKEN_INVALID")
        expired = api.token_for(user_id, expires=timedelta(seconds=-1))
        assert_error(client.http.get("/probe", headers=expired), 401, "TOKEN_EXPIRED")
    finally:
        client.close()
