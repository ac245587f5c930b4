"""Accounts: registration, password checks and the throttle on failed logins.

Passwords are hashed with argon2id at OWASP's recommended minimum (19 MiB, 2 passes, one
lane: about 40 ms on one core). Tokens are the web side's business; this module only
answers "who is this?".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from queue_jobs import store
from queue_jobs.domain_errors import RateLimited
from queue_jobs.store import Conn, User

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified when the email is unknown, so that a miss costs as long as a wrong password
# (response time does not tell which emails have accounts).
_DUMMY_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True)
class LoginThrottle:
    """Failed logins allowed per window, for one email and for one client address."""

    failures_per_email: int = 5
    failures_per_address: int = 20
    window_s: int = 15 * 60


def normalize_email(email: str) -> str:
    # Mail providers treat local parts case-insensitively, and so do people typing them.
    return email.strip().lower()


def hash_password(password: str) -> str:
    """Slow on purpose: call it outside any transaction."""
    return _hasher.hash(password)


def register(conn: Conn, email: str, password_hash: str, name: str | None) -> User:
    """Raises psycopg's UniqueViolation (users_email_key) when the email is taken."""
    return store.create_user(conn, uuid.uuid4(), normalize_email(email), name, password_hash)


def log_in(conn: Conn, email: str, password: str, address: str,
           throttle: LoginThrottle) -> User | None:
    """The user, or None for a wrong email or password. A failure is recorded in the
    caller's transaction, which must commit it before answering 401."""
    email = normalize_email(email)
    store.lock_key(conn, f"login:{email}")  # parallel guesses are counted one by one
    keys = {f"login-email:{email}": throttle.failures_per_email,
            f"login-address:{address}": throttle.failures_per_address}
    for key, allowed in keys.items():
        _refuse_if_over(conn, key, allowed, throttle.window_s)
    login = store.get_login(conn, email)
    matches = _password_matches(login.password_hash if login else _DUMMY_HASH, password)
    if login is None or not matches:
        for key in keys:
            store.hit_rate_limit(conn, key, throttle.window_s)
        return None
    store.clear_rate_limit(conn, f"login-email:{email}")
    if _hasher.check_needs_rehash(login.password_hash):
        store.update_password_hash(conn, login.id, _hasher.hash(password))
    return User(login.id, login.email, login.name)


def _refuse_if_over(conn: Conn, key: str, allowed: int, window_s: int) -> None:
    count = store.peek_rate_limit(conn, key, window_s)
    if count is not None and count.hits >= allowed:
        # Refused even with the right password: otherwise guessing could simply go on.
        raise RateLimited("Too many failed logins; try again later.",
                          retry_after_s=count.retry_after_s)


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
