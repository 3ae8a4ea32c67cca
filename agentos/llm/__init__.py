"""LLM providers behind one interface; see :mod:`agentos.llm.base` for the contract.

``complete()`` returns an :class:`LLMResult` or raises an :class:`LLMError`, nothing else;
the error's ``kind`` says who must act (``model``, ``transient``, ``configuration``,
``internal``), its ``code`` is stable and ``compact()`` is one line (:mod:`agentos.llm.errors`).

``get_provider()`` builds the provider named by ``LLM_PROVIDER`` once per configuration
(the cache key is the settings that matter, so tests overriding settings get a fresh one).
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from agentos.llm.base import LLMRequest, LLMResult, Provider
from agentos.llm.errors import (
    CONFIGURATION,
    INTERNAL,
    MODEL,
    TRANSIENT,
    EmptyModelOutput,
    InvalidModelOutput,
    LLMAuthError,
    LLMBadRequest,
    LLMBadResponse,
    LLMConfigurationError,
    LLMConnectionError,
    LLMError,
    LLMInternalError,
    LLMRateLimited,
    LLMServerError,
    LLMTimeout,
    LLMTransientError,
    LLMUnknownModel,
    LLMUnsupportedParameter,
    ModelError,
    ModelRefusal,
    TruncatedOutput,
)

__all__ = [
    "CONFIGURATION", "INTERNAL", "MODEL", "TRANSIENT", "EmptyModelOutput", "InvalidModelOutput", "LLMAuthError",
    "LLMBadRequest", "LLMBadResponse", "LLMConfigurationError", "LLMConnectionError", "LLMError",
    "LLMInternalError", "LLMRateLimited", "LLMRequest", "LLMResult", "LLMServerError", "LLMTimeout",
    "LLMTransientError", "LLMUnknownModel", "LLMUnsupportedParameter", "ModelError", "ModelRefusal", "Provider",
    "TruncatedOutput", "get_provider", "is_offline",
]


@lru_cache(maxsize=8)
def _build(name: str, model: str, api_key: str, base_url: str | None, timeout: float, max_retries: int,
           retry_window: float) -> Provider:
    if name == "openai":
        from agentos.llm.openai_provider import OpenAIProvider

        return OpenAIProvider(api_key=api_key, model=model, base_url=base_url, timeout=timeout,
                              max_retries=max_retries, retry_window=retry_window)
    if name == "anthropic":
        from agentos.llm.anthropic_provider import AnthropicProvider

        return AnthropicProvider(api_key=api_key, model=model, base_url=base_url, timeout=timeout,
                                 max_retries=max_retries, retry_window=retry_window)
    from agentos.llm.offline import OfflineProvider

    return OfflineProvider(model=model)


def get_provider() -> Provider:
    name = settings.LLM_PROVIDER
    api_key = {"openai": settings.OPENAI_API_KEY, "anthropic": settings.ANTHROPIC_API_KEY}.get(name, "")
    base_url = {"openai": settings.OPENAI_BASE_URL,
                "anthropic": getattr(settings, "ANTHROPIC_BASE_URL", None)}.get(name)
    window = float(getattr(settings, "LLM_RETRY_WINDOW_SECONDS", 20.0))
    return _build(name, settings.LLM_MODEL, api_key, base_url, settings.LLM_TIMEOUT, settings.LLM_MAX_RETRIES,
                  window)


def is_offline() -> bool:
    return settings.LLM_PROVIDER == "offline"
