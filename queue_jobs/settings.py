"""Every environment read of the queue side, in one frozen object."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

DEFAULT_CHAT_MODEL = "gpt-4.1-mini"
DEFAULT_IMAGE_MODEL = "gpt-image-1"


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
    job_timeout_s: float
    retention_days: int
    # Transient faults are retried inside a step this many times, backoff doubling from base.
    step_retries: int
    retry_backoff_s: float
    # A 'doing' run whose worker's heartbeat is older than this is lost.
    stalled_after_s: float
    max_lost_runs: int
    pool_size: int

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> QueueSettings:
        env = dict(os.environ if env is None else env)
        api_key = env.get("OPENAI_API_KEY") or None
        provider = env.get("LLM_PROVIDER") or ("openai" if api_key else "offline")
        if provider not in {"openai", "offline"}:
            raise ValueError(f"LLM_PROVIDER must be 'openai' or 'offline', not {provider!r}")
        settings = cls(
            database_url=env.get("DATABASE_URL", ""),
            llm_provider=provider,
            openai_api_key=api_key,
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            openai_model=env.get("OPENAI_MODEL") or DEFAULT_CHAT_MODEL,
            openai_image_model=env.get("OPENAI_IMAGE_MODEL") or DEFAULT_IMAGE_MODEL,
            llm_timeout_s=float(env.get("LLM_TIMEOUT_S", "60")),
            fetch_allow_private=env_bool(env.get("FETCH_ALLOW_PRIVATE_NETWORKS")),
            job_timeout_s=float(env.get("JOB_TIMEOUT_S", "600")),
            retention_days=int(env.get("JOB_RETENTION_DAYS", "30")),
            step_retries=int(env.get("STEP_RETRIES", "3")),
            retry_backoff_s=float(env.get("RETRY_BACKOFF_S", "1.0")),
            stalled_after_s=float(env.get("WORKER_STALLED_AFTER_S", "30")),
            max_lost_runs=3,
            pool_size=int(env.get("WORKER_DB_POOL_SIZE", "10")),
        )
        return replace(settings, **overrides)
