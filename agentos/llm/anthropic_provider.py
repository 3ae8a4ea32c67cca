"""Anthropic's Messages API through the official SDK, same contract as the other providers.

A response schema whose root is a plain object is enforced by forcing a single tool call
(``respond``) whose input schema is the response schema; other schemas (e.g. a ``oneOf`` of
actions) are described in the system prompt and the text is parsed. Either way the JSON is validated here.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anthropic

from agentos.llm.base import (
    LLMError,
    LLMRequest,
    LLMResult,
    Provider,
    parse_json_output,
    translate_sdk_error,
)
from agentos.llm.openai_provider import schema_instruction

RESPOND_TOOL = "respond"
DEFAULT_MAX_TOKENS = 2048


def split_messages(messages: list[dict[str, str]]) -> tuple[str, list[dict[str, str]]]:
    """System text apart; the rest merged so roles alternate and the first one is the user's."""
    system = "\n\n".join(m["content"] for m in messages if m.get("role") == "system")
    turns: list[dict[str, str]] = []
    for message in messages:
        if message.get("role") == "system":
            continue
        role = "assistant" if message.get("role") == "assistant" else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1] = {"role": role, "content": turns[-1]["content"] + "\n\n" + str(message.get("content", ""))}
        else:
            turns.append({"role": role, "content": str(message.get("content", ""))})
    if not turns or turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": "Begin."})
    return system, turns


class AnthropicProvider(Provider):
    name = "anthropic"

    def __init__(self, *, api_key: str, model: str, base_url: str | None = None, timeout: float = 60.0,
                 max_retries: int = 3) -> None:
        self.model = model
        self.client = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout,
                                          max_retries=max_retries)

    def complete(self, request: LLMRequest) -> LLMResult:
        system, turns = split_messages(request.messages)
        schema = request.response_schema
        kwargs: dict[str, Any] = {"model": self.model, "messages": turns,
                                  "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS}
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        # Tool input schemas must be a plain object at the root (no oneOf/anyOf/allOf there).
        use_tool = schema is not None and schema.get("type") == "object" and not (
            {"oneOf", "anyOf", "allOf"} & set(schema))
        if use_tool:
            kwargs["tools"] = [{"name": RESPOND_TOOL, "description": "Give the answer as structured data.",
                                "input_schema": schema}]
            kwargs["tool_choice"] = {"type": "tool", "name": RESPOND_TOOL}
        elif schema is not None:
            system = (system + "\n\n" if system else "") + schema_instruction(schema)
        if system:
            kwargs["system"] = system
        started = time.monotonic()
        try:
            response = self.client.messages.create(**kwargs)
        except anthropic.AnthropicError as error:
            raise translate_error(error) from None
        latency_ms = int((time.monotonic() - started) * 1000)
        text = "".join(block.text for block in response.content if block.type == "text")
        if use_tool:
            inputs = [block.input for block in response.content if block.type == "tool_use"]
            # Validated like any other text so a non-conforming tool input is InvalidModelOutput too.
            text = json.dumps(inputs[0]) if inputs else text
        data = parse_json_output(text, schema) if schema is not None else None
        return LLMResult(text=text, data=data, tokens_in=response.usage.input_tokens,
                         tokens_out=response.usage.output_tokens, model=response.model or self.model,
                         latency_ms=latency_ms)


def translate_error(error: anthropic.AnthropicError) -> LLMError:
    return translate_sdk_error(error, anthropic, "anthropic")
