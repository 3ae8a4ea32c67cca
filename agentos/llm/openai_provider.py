"""OpenAI and every OpenAI-compatible server (Azure, vLLM, Ollama, llama.cpp) via the official SDK.

With a response schema the request asks for structured output (``json_schema``, strict
when the schema allows it). Servers that reject ``json_schema`` with a 400 get the older
``json_object`` mode with the schema spelled out in a system message; the provider
remembers that for the rest of the process. Either way the answer is parsed and validated
here, because compatible servers do not all enforce the schema.

The SDK retries connection errors, 408/409/429 and 5xx with exponential backoff
(``max_retries``); what is left after that becomes a typed :class:`LLMError`.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import openai

from agentos.llm.base import (
    LLMBadResponse,
    LLMError,
    LLMRequest,
    LLMResult,
    Provider,
    count_tokens,
    messages_tokens,
    one_line,
    parse_json_output,
    translate_sdk_error,
)


def strict_compatible(schema: Any) -> bool:
    """OpenAI strict mode needs every object closed and every property required, no oneOf."""
    if isinstance(schema, list):
        return all(strict_compatible(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    if "oneOf" in schema or "allOf" in schema or "not" in schema:
        return False
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False or set(schema.get("required", [])) != set(properties):
            return False
    return all(strict_compatible(value) for key, value in schema.items() if key not in ("enum", "const", "default"))


def schema_instruction(schema: dict) -> str:
    return "Reply with one JSON object, and nothing else, that matches this JSON Schema:\n" + json.dumps(schema)


class OpenAIProvider(Provider):
    name = "openai"

    def __init__(self, *, api_key: str, model: str, base_url: str | None = None, timeout: float = 60.0,
                 max_retries: int = 3) -> None:
        self.model = model
        self.client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)
        self.json_schema_supported = True

    def complete(self, request: LLMRequest) -> LLMResult:
        started = time.monotonic()
        try:
            response = self._create(request)
        except openai.OpenAIError as error:
            raise translate_error(error) from None
        latency_ms = int((time.monotonic() - started) * 1000)
        if not response.choices:
            raise LLMBadResponse("the server returned no choices")
        message = response.choices[0].message
        if getattr(message, "refusal", None):
            raise LLMBadResponse(f"the model refused: {one_line(message.refusal, 200)}")
        text = message.content or ""
        data = parse_json_output(text, request.response_schema) if request.response_schema is not None else None
        usage = response.usage
        return LLMResult(
            text=text,
            data=data,
            tokens_in=usage.prompt_tokens if usage else messages_tokens(request.messages),
            tokens_out=usage.completion_tokens if usage else count_tokens(text),
            model=response.model or self.model,
            latency_ms=latency_ms,
        )

    def _create(self, request: LLMRequest) -> Any:
        kwargs: dict[str, Any] = {"model": self.model, "messages": request.messages}
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        schema = request.response_schema
        if schema is None:
            return self.client.chat.completions.create(**kwargs)
        if self.json_schema_supported:
            response_format = {
                "type": "json_schema",
                "json_schema": {
                    "name": re.sub(r"[^a-zA-Z0-9_-]", "_", request.schema_name or "response")[:64],
                    "schema": schema,
                    "strict": strict_compatible(schema),
                },
            }
            try:
                return self.client.chat.completions.create(response_format=response_format, **kwargs)
            except openai.BadRequestError:
                pass  # many compatible servers reject json_schema with a 400; JSON mode is the fallback
        messages = [*request.messages, {"role": "system", "content": schema_instruction(schema)}]
        response = self.client.chat.completions.create(
            **{**kwargs, "messages": messages}, response_format={"type": "json_object"}
        )
        # Only a server that accepted JSON mode after refusing json_schema is marked as lacking it.
        self.json_schema_supported = False
        return response


def translate_error(error: openai.OpenAIError) -> LLMError:
    """The SDK's exception as one of ours, with a one-line message naming the cause."""
    return translate_sdk_error(error, openai, "openai")
