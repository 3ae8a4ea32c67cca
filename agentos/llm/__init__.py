"""LLM providers behind one interface; see :mod:`agentos.llm.base` for the contract.

``get_provider()`` builds the provider named by ``LLM_PROVIDER`` once per configuration
(the cache key is the settings that matter, so tests overriding settings get a fresh one).
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from agentos.llm.base import (
    InvalidModelOutput,
    LLMAuthError,
    LLMBadResponse,
    LLMError,
    LLMRateLimited,
    LLMRequest,
    LLMResult,
    LLMTimeout,
    Provider,
)

__all__ = [
    "InvalidModelOutput", "LLMAuthError", "LLMBadResponse", "LLMError", "LLMRateLimited", "LLMRequest",
    "LLMResult", "LLMTimeout", "Provider", "get_provider", "is_offline",
]


@lru_cache(maxsize=8)
def _build(name: str, model: str, api_key: str, base_url: str | None, timeout: float, max_retries: int) -> Provider:
    if name == "openai":
        from agentos.llm.openai_provider import OpenAIProvider

        return OpenAIProvider(api_key=api_key, model=model, base_url=base_url, timeout=timeout,
                              max_retries=max_retries)
    if name == "anthropic":
        from agentos.llm.anthropic_provider import AnthropicProvider

        return AnthropicProvider(api_key=api_key, model=model, base_url=base_url, timeout=timeout,
                                 max_retries=max_retries)
    from agentos.llm.offline import OfflineProvider

    return OfflineProvider(model=model)


def get_provider() -> Provider:
    name = settings.LLM_PROVIDER
    api_key = {"openai": settings.OPENAI_API_KEY, "anthropic": settings.ANTHROPIC_API_KEY}.get(name, "")
    base_url = {"openai": settings.OPENAI_BASE_URL,
                "anthropic": getattr(settings, "ANTHROPIC_BASE_URL", None)}.get(name)
    return _build(name, settings.LLM_MODEL, api_key, base_url, settings.LLM_TIMEOUT, settings.LLM_MAX_RETRIES)


def is_offline() -> bool:
    return settings.LLM_PROVIDER == "offline"
