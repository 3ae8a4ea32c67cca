"""The offline provider: a deterministic rule set, not a language model.

It answers each default prompt (plan, agent_*, summarize, synthesize) with JSON built by
the rules in :mod:`agentos.llm.offline_rules`, validated against the request's schema like
any model output. Unknown prompts get a minimal instance of their schema. A configurable
delay (``OFFLINE_LLM_LATENCY_MS``) makes runs as slow and I/O-bound as a hosted model.
"""

from __future__ import annotations

import json
import time

from django.conf import settings

from agentos.llm import offline_rules
from agentos.llm.base import (
    LLMRequest,
    LLMResult,
    Provider,
    count_tokens,
    messages_tokens,
    schema_problem,
)
from agentos.llm.errors import LLMConfigurationError
from agentos.llm.offline_text import example_for


def _last_user_text(request: LLMRequest) -> str:
    for message in reversed(request.messages):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def answer(request: LLMRequest) -> dict:
    """The rule set's output for one request (before validation)."""
    variables = request.variables or {}
    query = str(variables.get("query") or _last_user_text(request))
    schema, name = request.response_schema, request.schema_name or ""
    if name == "plan":
        return offline_rules.plan(query, variables, schema)
    if name.startswith("agent"):
        return offline_rules.agent_step(query, variables, schema, request.messages)
    if name == "summarize":
        return offline_rules.summarize(variables, request.messages)
    if name == "synthesize":
        return offline_rules.synthesize(query, variables)
    return example_for(schema) if schema else {"text": query}


class OfflineProvider(Provider):
    name = "offline"

    def __init__(self, *, model: str = "offline-rules") -> None:
        self.model = model

    def _complete(self, request: LLMRequest) -> LLMResult:
        started = time.monotonic()
        delay_ms = int(getattr(settings, "OFFLINE_LLM_LATENCY_MS", 0) or 0)
        if delay_ms:
            time.sleep(delay_ms / 1000)  # workers use a thread pool, so sleeping only blocks this call
        data = answer(request)
        problem = schema_problem(data, request.response_schema)
        if problem:
            # The rules know the default prompts; a schema edited beyond them is a configuration problem.
            raise LLMConfigurationError(
                f"offline rule set cannot satisfy the '{request.schema_name}' schema: {problem}",
                code="schema_unsupported")
        text = json.dumps(data, ensure_ascii=False)
        return LLMResult(
            text=text,
            data=data if request.response_schema is not None else None,
            tokens_in=messages_tokens(request.messages),
            tokens_out=count_tokens(text),
            model=self.model,
            latency_ms=int((time.monotonic() - started) * 1000),
        )
