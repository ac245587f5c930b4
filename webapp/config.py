"""Every environment read of the web side, in one frozen object."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from queue_jobs.services.accounts import AuthThrottle
from queue_jobs.services.fair_use import FairUse

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEV_SECRET_FILE = PROJECT_DIR / "var" / "jwt-secret"
MIB = 1024 * 1024


class ConfigError(RuntimeError):
    pass


def _dev_jwt_secret() -> str:
    """Generated once per checkout and kept under var/, so tokens survive restarts."""
    if DEV_SECRET_FILE.exists():
        return DEV_SECRET_FILE.read_text().strip()
    DEV_SECRET_FILE.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    DEV_SECRET_FILE.write_text(secret)
    DEV_SECRET_FILE.chmod(0o600)
    return secret


@dataclass(frozen=True)
class WebConfig:
    database_url: str
    app_env: str
    jwt_secret_key: str
    cors_origins: tuple[str, ...]
    max_body_bytes: int
    pool_min_size: int
    pool_max_size: int
    # A request waits at most this long for a connection: PostgreSQL down answers 503 fast.
    db_wait_s: float
    access_token_ttl_s: int
    refresh_token_ttl_s: int
    fair_use: FairUse
    auth_throttle: AuthThrottle
    # Reverse proxies in front of gunicorn whose X-Forwarded-For is trusted (client address
    # for rate limits). 0: the peer address is the client.
    trusted_proxies: int
    # Deprecated synchronous calls running at once per process; the other gunicorn
    # threads stay free for status polls.
    legacy_calls_per_process: int
    # The bearer token of the read-only ops page (/ops). None: the page is not served.
    ops_token: str | None
    # One JSON log line per request (ACCESS_LOG=0 turns it off).
    request_log: bool

    @classmethod
    def from_env(cls, overrides: dict[str, Any] | None = None) -> WebConfig:
        env = os.environ
        app_env = env.get("APP_ENV", "development")
        secret = env.get("JWT_SECRET_KEY") or ""
        if not secret and not (overrides or {}).get("jwt_secret_key"):
            if app_env == "production":
                raise ConfigError("JWT_SECRET_KEY is required when APP_ENV=production")
            secret = _dev_jwt_secret()
        default_origins = "" if app_env == "production" else "*"
        config = cls(
            database_url=env.get("DATABASE_URL", ""),
            app_env=app_env,
            jwt_secret_key=secret,
            cors_origins=tuple(o.strip() for o in
                               env.get("CORS_ORIGINS", default_origins).split(",") if o.strip()),
            max_body_bytes=MIB,
            pool_min_size=int(env.get("DB_POOL_MIN_SIZE", "1")),
            pool_max_size=int(env.get("DB_POOL_MAX_SIZE", "8")),
            db_wait_s=float(env.get("DB_WAIT_S", "2.5")),
            access_token_ttl_s=int(env.get("JWT_ACCESS_TTL_S", "900")),
            refresh_token_ttl_s=int(env.get("JWT_REFRESH_TTL_S", str(30 * 24 * 3600))),
            fair_use=FairUse(
                max_active_per_session=int(env.get("MAX_ACTIVE_JOBS_PER_SESSION", "5")),
                max_active_per_user=int(env.get("MAX_ACTIVE_JOBS_PER_USER", "20")),
                creates_per_address_per_minute=int(env.get("JOB_CREATE_RATE_PER_ADDRESS",
                                                           "60")),
                idempotency_window_s=int(env.get("IDEMPOTENCY_WINDOW_S", str(24 * 3600))),
            ),
            auth_throttle=AuthThrottle(
                failures_per_email_and_address=int(
                    env.get("LOGIN_FAILURES_PER_EMAIL_AND_ADDRESS", "5")),
                failures_per_address=int(env.get("LOGIN_FAILURES_PER_ADDRESS", "20")),
                failures_per_email=int(env.get("LOGIN_FAILURES_PER_EMAIL", "100")),
                window_s=int(env.get("LOGIN_FAILURE_WINDOW_S", "900")),
                registrations_per_address=int(env.get("REGISTRATIONS_PER_ADDRESS_PER_HOUR",
                                                      "20")),
            ),
            trusted_proxies=int(env.get("TRUSTED_PROXIES", "0")),
            legacy_calls_per_process=int(env.get(
                "LEGACY_CALLS_PER_PROCESS", str(max(1, int(env.get("WEB_THREADS", "8")) - 2)))),
            ops_token=env.get("OPS_TOKEN", "").strip() or None,
            request_log=env.get("ACCESS_LOG", "1") != "0",
        )
        return replace(config, **(overrides or {}))
