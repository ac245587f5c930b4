"""Accounts: registration, password checks and the throttles on logins and sign-ups.

Passwords are hashed with argon2id at OWASP's recommended minimum (19 MiB, 2 passes, one
lane: about 40 ms on one core), always outside a transaction. Tokens are the web side's
business; this module only answers "who is this?".

A login is counted *before* its password is checked, in a short transaction of its own:
the counter's row lock orders parallel guesses, so each sees the ones before it and a
burst cannot slip past the limit. A successful login takes its count back.

Three counters: one email from one address (tight: guessing at one account), one address
(spraying many accounts), and one email from everywhere (loose: distributed guessing).
The tight one is per address so that a stranger's wrong guesses cannot lock the owner
out from their own address; the loose one costs an attacker many addresses to trip.
"""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from queue_jobs.db import store
from queue_jobs.db.store import Conn
from queue_jobs.models import Login, User
from queue_jobs.services import rate_limits
from queue_jobs.services.errors import TokenInvalid

ACCOUNT_GONE = "The account no longer exists."
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified when the email is unknown, so that a miss costs as long as a wrong password
# (response time does not tell which emails have accounts).
_DUMMY_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True)
class AuthThrottle:
    """Failed logins allowed per window (see the module docstring), and sign-ups per hour
    from one address (each costs a slow hash)."""

    failures_per_email_and_address: int = 5
    failures_per_address: int = 20
    failures_per_email: int = 100
    window_s: int = 15 * 60
    registrations_per_address: int = 20
    registration_window_s: int = 3600


@dataclass(frozen=True)
class LoginAttempt:
    """A counted attempt, waiting for its password check."""

    login: Login | None  # None: no account with this email
    pair_key: str
    windows: dict[str, datetime]  # counter key -> the window this attempt was counted in


def normalize_email(email: str) -> str:
    # One spelling per address: composed Unicode, no stray blanks, case-insensitive (as
    # mail providers and people treat it).
    return unicodedata.normalize("NFC", email).strip().lower()


def hash_password(password: str) -> str:
    """Slow on purpose: call it outside any transaction."""
    return _hasher.hash(password)


def count_registration(conn: Conn, address: str, throttle: AuthThrottle) -> None:
    rate_limits.count(conn, f"register-address:{address}", throttle.registrations_per_address,
                      throttle.registration_window_s,
                      "Too many sign-ups from this address; try again later.")


def register(conn: Conn, email: str, password_hash: str, name: str | None) -> User:
    """Raises psycopg's UniqueViolation (users_email_key) when the email is taken."""
    return store.create_user(conn, uuid.uuid4(), normalize_email(email), name, password_hash)


def begin_login(conn: Conn, email: str, address: str, throttle: AuthThrottle) -> LoginAttempt:
    """Counts the attempt for the email and the address; RateLimited when either is over
    (then, even the right password is refused: otherwise guessing could simply go on)."""
    email = normalize_email(email)
    limits = {f"login-email-address:{email}|{address}": throttle.failures_per_email_and_address,
              f"login-address:{address}": throttle.failures_per_address,
              f"login-email:{email}": throttle.failures_per_email}
    refusal = "Too many failed logins; try again later."
    windows = {key: rate_limits.count(conn, key, allowed, throttle.window_s, refusal)
               for key, allowed in limits.items()}
    return LoginAttempt(store.get_login(conn, email), next(iter(limits)), windows)


def verify_password(attempt: LoginAttempt, password: str) -> str | None:
    """Slow: call it outside any transaction. None for a wrong email or password, else the
    hash to keep (a new one when the hashing parameters were raised since)."""
    stored = attempt.login.password_hash if attempt.login else _DUMMY_HASH
    if not _password_matches(stored, password) or attempt.login is None:
        return None
    return _hasher.hash(password) if _hasher.check_needs_rehash(stored) else stored


def finish_login(conn: Conn, attempt: LoginAttempt, password_hash: str) -> User:
    """After a successful check: the attempt no longer counts as a failure."""
    login = attempt.login
    assert login is not None  # verify_password answers None for unknown emails
    # The account's own counter starts again; the shared ones only lose this attempt.
    store.clear_rate_limit(conn, attempt.pair_key)
    for key, window_started_at in attempt.windows.items():
        if key != attempt.pair_key:
            store.release_rate_limit(conn, key, window_started_at)
    if password_hash != login.password_hash:
        store.update_password_hash(conn, login.id, password_hash)
    return User(login.id, login.email, login.name)


def existing_user(conn: Conn, user_id: uuid.UUID) -> User:
    """The user a valid token names; 401 TOKEN_INVALID if the account no longer exists
    (deleted since the token was issued), as for a bad token."""
    found = store.get_user(conn, user_id)
    if found is None:
        raise TokenInvalid(ACCOUNT_GONE)
    return found


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
