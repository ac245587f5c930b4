"""Every environment read of the web side, in one frozen object (gunicorn's settings too:
webapp.gunicorn_conf reads them here)."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from marshmallow.validate import Range

from queue_jobs.config.env_reader import EnvReader, SettingsError
from queue_jobs.services.accounts import AuthThrottle
from queue_jobs.services.fair_use import FairUse

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEV_SECRET_FILE = PROJECT_DIR / "var" / "jwt-secret"
# make run's OPS_TOKEN unless set (ops/run_dev.py): an open /ops tab survives a restart.
DEV_OPS_TOKEN_FILE = PROJECT_DIR / "var" / "ops-token"
MIB = 1024 * 1024
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# In production a secret shorter than this is refused: a short HS256 key or ops token can
# be guessed offline from one token, or online.
MIN_SECRET_LENGTH = 32


class ConfigError(SettingsError):
    """A web setting that is well formed but cannot be started with."""


def kept_secret(path: Path, nbytes: int = 48) -> str:
    """A random secret made on first use and kept in `path` (mode 0600 from the start),
    the same one on every later call: for development, where nothing sets it. Processes
    starting at once agree on one (the file appears whole, or not at all)."""
    with contextlib.suppress(FileNotFoundError):
        if kept := path.read_text().strip():
            return kept
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(nbytes)
    descriptor, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secret + "\n")
        try:
            os.link(draft, path)  # fails if another process's secret is there first
        except FileExistsError:
            if kept := path.read_text().strip():
                return kept
            os.replace(draft, path)  # an empty file: ours replaces it
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(draft)
    return secret


def _dev_jwt_secret() -> str:
    """Generated once per checkout and kept under var/, so tokens survive restarts."""
    return kept_secret(DEV_SECRET_FILE)


def dev_ops_token() -> str:
    """make run's ops token, kept under var/ like the JWT secret: a restart keeps open
    /ops tabs working."""
    return kept_secret(DEV_OPS_TOKEN_FILE, 24)


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
    # gunicorn's (webapp.gunicorn_conf): where it listens, its processes and threads per
    # process, its control socket ("": none), and whether its own lines are JSON.
    host: str
    port: int
    web_concurrency: int
    web_threads: int
    # gevent (default): a stream is a greenlet, so a process holds thousands of event
    # streams; gthread: a stream holds a thread (streams_per_process is capped to leave
    # threads to polls).
    worker_class: str
    # Live status (queue_jobs.services.live): event streams one process holds at most
    # (past it: 503, the client polls), the keep-alive comment's interval, and how often an
    # open stream's estimate is rendered again while nothing is written.
    streams_per_process: int
    stream_keepalive_s: float
    stream_eta_tick_s: float
    control_socket: str
    log_format: str  # json, text, or "" (unset): text at a terminal, else JSON
    log_level: str  # DEBUG adds a line per status poll (at INFO, only failed polls have one)

    @classmethod
    def from_env(cls, overrides: dict[str, Any] | None = None, *,
                 environ: Mapping[str, str] | None = None) -> WebConfig:
        """From `environ` (None: os.environ), then `overrides` (create_app's test_config);
        SettingsError names every bad variable."""
        env = EnvReader(environ)
        app_env = env.str("APP_ENV", "development")
        secret = env.str("JWT_SECRET_KEY", "")
        default_origins = "" if app_env == "production" else "*"
        web_threads = env.int("WEB_THREADS", 8)
        worker_class = env.choice("WEB_WORKER_CLASS", "gevent", ("gevent", "gthread"))
        streams = env.int("LIVE_STREAMS_PER_PROCESS", 10_000, validate=Range(min=0))
        if worker_class == "gthread":
            streams = min(streams, web_threads // 2)
        config = cls(
            database_url=env.str("DATABASE_URL", ""),
            app_env=app_env,
            jwt_secret_key=secret,
            cors_origins=tuple(o.strip() for o in
                               env.str("CORS_ORIGINS", default_origins).split(",") if o.strip()),
            max_body_bytes=MIB,
            pool_min_size=env.int("DB_POOL_MIN_SIZE", 1),
            pool_max_size=env.int("DB_POOL_MAX_SIZE", 8),
            db_wait_s=env.seconds("DB_WAIT_S", 2.5),
            access_token_ttl_s=env.int("JWT_ACCESS_TTL_S", 900),
            refresh_token_ttl_s=env.int("JWT_REFRESH_TTL_S", 30 * 24 * 3600),
            fair_use=FairUse(
                max_active_per_session=env.int("MAX_ACTIVE_JOBS_PER_SESSION", 5),
                max_active_per_user=env.int("MAX_ACTIVE_JOBS_PER_USER", 20),
                creates_per_address_per_minute=env.int("JOB_CREATE_RATE_PER_ADDRESS", 60),
                idempotency_window_s=env.int("IDEMPOTENCY_WINDOW_S", 24 * 3600),
                fair_dispatch=env.bool("FAIR_DISPATCH", True),
            ),
            auth_throttle=AuthThrottle(
                failures_per_email_and_address=env.int("LOGIN_FAILURES_PER_EMAIL_AND_ADDRESS",
                                                        5),
                failures_per_address=env.int("LOGIN_FAILURES_PER_ADDRESS", 20),
                failures_per_email=env.int("LOGIN_FAILURES_PER_EMAIL", 100),
                window_s=env.int("LOGIN_FAILURE_WINDOW_S", 900),
                registrations_per_address=env.int("REGISTRATIONS_PER_ADDRESS_PER_HOUR", 20),
            ),
            trusted_proxies=env.int("TRUSTED_PROXIES", 0),
            legacy_calls_per_process=env.int("LEGACY_CALLS_PER_PROCESS",
                                             max(1, web_threads - 2)),
            ops_token=env.str("OPS_TOKEN", "").strip() or None,
            request_log=env.str("ACCESS_LOG", "1") != "0",
            host=env.str("HOST", "127.0.0.1"),
            port=env.int("PORT", 8000),
            web_concurrency=env.int("WEB_CONCURRENCY", 2),
            web_threads=web_threads,
            worker_class=worker_class,
            streams_per_process=streams,
            stream_keepalive_s=env.seconds("LIVE_KEEPALIVE_S", 10.0),
            stream_eta_tick_s=env.seconds("LIVE_ETA_TICK_S", 5.0),
            control_socket=env.str("GUNICORN_CONTROL_SOCKET", ""),
            log_format=env.choice("LOG_FORMAT", "", ("", "json", "text")),
            log_level=env.choice("LOG_LEVEL", "INFO",
                                 LOG_LEVELS + tuple(map(str.lower, LOG_LEVELS))).upper(),
        )
        env.check()
        if not secret and not (overrides or {}).get("jwt_secret_key"):
            if app_env == "production":
                raise ConfigError("JWT_SECRET_KEY is required when APP_ENV=production")
            config = replace(config, jwt_secret_key=_dev_jwt_secret())
        config = replace(config, **(overrides or {}))
        if config.app_env == "production":
            _check_secret_lengths({"JWT_SECRET_KEY": config.jwt_secret_key,
                                   "OPS_TOKEN": config.ops_token})
        return config


def _check_secret_lengths(secrets_by_name: Mapping[str, str | None]) -> None:
    """One line naming every secret that is set but too short (never its value)."""
    short = [name for name, value in secrets_by_name.items()
             if value is not None and len(value) < MIN_SECRET_LENGTH]
    if short:
        raise ConfigError("; ".join(
            f"{name}: must be at least {MIN_SECRET_LENGTH} characters when "
            f"APP_ENV=production" for name in short))
