"""Per-process resources of a worker: a sync connection pool, a thread pool, the provider.

Pipelines are synchronous code (requests, the openai client); they run in our own thread
pool, sized well above any --concurrency, because procrastinate's default executor caps
sync work at cpus+4 threads.
"""

from __future__ import annotations

import atexit
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from psycopg_pool import ConnectionPool

from queue_jobs.config.settings import QueueSettings
from queue_jobs.db import connections
from queue_jobs.pipeline.llm.base import LLMProvider
from queue_jobs.pipeline.llm.factory import build_provider

PIPELINE_THREADS = 128  # threads start on demand; abandoned (cancelled) runs may hold some


class RunResources(Protocol):
    """What running a pipeline needs: a worker's runtime, or the web side's own."""

    @property
    def settings(self) -> QueueSettings: ...

    @property
    def pool(self) -> ConnectionPool: ...

    @property
    def provider(self) -> LLMProvider: ...


@dataclass
class WorkerRuntime:
    settings: QueueSettings
    pool: ConnectionPool
    executor: ThreadPoolExecutor
    provider: LLMProvider

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.pool.close()


_runtimes: dict[QueueSettings, WorkerRuntime] = {}
_lock = threading.Lock()


def runtime_for(settings: QueueSettings) -> WorkerRuntime:
    with _lock:
        runtime = _runtimes.get(settings)
        if runtime is None:
            runtime = _runtimes[settings] = _open(settings)
        return runtime


def close_all() -> None:
    with _lock:
        for runtime in _runtimes.values():
            runtime.close()
        _runtimes.clear()


@dataclass(frozen=True)
class InProcessResources:
    """RunResources on a pool the caller already has (the web side's in-request runs)."""

    settings: QueueSettings
    pool: ConnectionPool
    provider: LLMProvider


def provider_for(settings: QueueSettings) -> LLMProvider:
    return build_provider(
        provider=settings.llm_provider, api_key=settings.openai_api_key,
        base_url=settings.openai_base_url, model=settings.openai_model,
        image_model=settings.openai_image_model, timeout_s=settings.llm_timeout_s)


def _open(settings: QueueSettings) -> WorkerRuntime:
    pool = connections.open_pool(settings.database_url, name="worker", min_size=1,
                        max_size=settings.pool_size, timeout=30, connect_timeout=5, wait=False)
    executor = ThreadPoolExecutor(PIPELINE_THREADS, thread_name_prefix="pipeline")
    return WorkerRuntime(settings, pool, executor, provider_for(settings))


atexit.register(close_all)
