"""Every environment read of the queue side, in one frozen object (the worker process's
too: its concurrency, health port, heartbeat...)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from marshmallow.validate import Range

from queue_jobs.config.env_reader import EnvReader, SettingsError

DEFAULT_CHAT_MODEL = "gpt-4.1-mini"
DEFAULT_IMAGE_MODEL = "gpt-image-1"
DEFAULT_CONCURRENCY = 4
DEFAULT_METRICS_HOST = "127.0.0.1"
PORT_RANGE = Range(min=0, max=65535)


def env_bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class QueueSettings:
    database_url: str
    llm_provider: str  # "openai" | "offline"
    openai_api_key: str | None
    openai_base_url: str | None
    openai_model: str
    openai_image_model: str
    llm_timeout_s: float
    fetch_allow_private: bool
    # A whole page fetch (connections, redirects, headers, body) fails past this.
    fetch_deadline_s: float
    job_timeout_s: float
    retention_days: int
    # Transient faults are retried inside a step this many times, backoff doubling from base.
    step_retries: int
    retry_backoff_s: float
    # A 'doing' run whose worker's heartbeat is older than this is lost.
    stalled_after_s: float
    max_lost_runs: int
    pool_size: int
    # The worker process (queue_jobs.worker): jobs run at once, where /healthz and /metrics
    # answer (port 0: nowhere), its heartbeat period, how long running jobs get on SIGTERM,
    # and how often the reaper looks for lost and overdue runs.
    concurrency: int
    metrics_host: str
    metrics_port: int
    heartbeat_s: float
    shutdown_grace_s: float
    reaper_interval_s: int
    # Fair turns per owner when the worker re-dispatches (the web side's in webapp.config).
    fair_dispatch: bool

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 **overrides: Any) -> QueueSettings:
        """From `environ` (None: os.environ); SettingsError names every bad variable."""
        env = EnvReader(environ)
        # `or`: set but empty means the default, as these were always read.
        api_key = env.str("OPENAI_API_KEY", "") or None
        provider = env.str("LLM_PROVIDER", "") or ("openai" if api_key else "offline")
        settings = cls(
            database_url=env.str("DATABASE_URL", ""),
            llm_provider=provider,
            openai_api_key=api_key,
            openai_base_url=env.str("OPENAI_BASE_URL", "") or None,
            openai_model=env.str("OPENAI_MODEL", "") or DEFAULT_CHAT_MODEL,
            openai_image_model=env.str("OPENAI_IMAGE_MODEL", "") or DEFAULT_IMAGE_MODEL,
            llm_timeout_s=env.seconds("LLM_TIMEOUT_S", 60.0),
            fetch_allow_private=env_bool(env.str("FETCH_ALLOW_PRIVATE_NETWORKS", "")),
            fetch_deadline_s=env.seconds("FETCH_DEADLINE_S", 20.0),
            job_timeout_s=env.seconds("JOB_TIMEOUT_S", 600.0),
            retention_days=env.int("JOB_RETENTION_DAYS", 30),
            step_retries=env.int("STEP_RETRIES", 3),
            retry_backoff_s=env.seconds("RETRY_BACKOFF_S", 1.0),
            stalled_after_s=env.seconds("WORKER_STALLED_AFTER_S", 30.0),
            max_lost_runs=3,
            pool_size=env.int("WORKER_DB_POOL_SIZE", 10),
            concurrency=env.int("WORKER_CONCURRENCY", DEFAULT_CONCURRENCY,
                                validate=Range(min=1), empty_is_default=True),
            metrics_host=env.str("WORKER_METRICS_HOST", "") or DEFAULT_METRICS_HOST,
            metrics_port=env.int("WORKER_METRICS_PORT", 0, validate=PORT_RANGE,
                                 empty_is_default=True),
            heartbeat_s=env.seconds("WORKER_HEARTBEAT_S", 10.0),
            shutdown_grace_s=env.seconds("WORKER_SHUTDOWN_GRACE_S", 10.0),
            reaper_interval_s=env.int("REAPER_INTERVAL_S", 10),
            fair_dispatch=env.bool("FAIR_DISPATCH", True),
        )
        env.check()
        if provider not in {"openai", "offline"}:
            raise SettingsError(f"LLM_PROVIDER must be 'openai' or 'offline', not {provider!r}")
        return replace(settings, **overrides)
