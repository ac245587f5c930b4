"""Choose the LLM provider from configuration."""

from __future__ import annotations

from queue_jobs.pipeline.llm.base import LLMProvider
from queue_jobs.pipeline.llm.offline import OfflineProvider
from queue_jobs.pipeline.llm.openai_provider import OpenAIProvider


def build_provider(
    *,
    provider: str,
    api_key: str | None,
    base_url: str | None,
    model: str,
    image_model: str,
    timeout_s: float,
) -> LLMProvider:
    """The configured provider; ValueError for an unknown name or a missing OpenAI API key."""
    if provider == "openai":
        if not api_key and not base_url:
            # Fail at startup rather than on the first job: api.openai.com answers 401.
            raise ValueError("the openai LLM provider needs an API key")
        return OpenAIProvider(
            # Local OpenAI-compatible servers often need no key, but the client insists on one.
            api_key=api_key or "no-key",
            base_url=base_url or None,
            model=model,
            image_model=image_model,
            timeout_s=timeout_s,
        )
    if provider == "offline":
        return OfflineProvider()
    raise ValueError(f"unknown LLM provider {provider!r} (expected 'openai' or 'offline')")
