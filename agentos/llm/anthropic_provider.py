"""Anthropic's Messages API through the official SDK, same contract as the other providers.

A response schema whose root is a plain object is enforced by forcing a single tool call
(``respond``) whose input schema is the response schema; other schemas (e.g. a ``oneOf`` of
actions) are described in the system prompt and the text is parsed. Either way the JSON is
validated here.

The pinned SDK (``anthropic`` 2.14) has no ``temperature`` argument on
``Messages.create`` (passing one is a ``TypeError`` before any request is sent), while the
API still accepts the field: it goes in ``extra_body``. ``max_tokens`` is required and
always sent.

Retries, error kinds and billing: :mod:`agentos.llm.remote`.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic

from agentos.llm.base import LLMRequest, LLMResult, parse_json_output
from agentos.llm.errors import (
    EmptyModelOutput,
    LLMBadResponse,
    LLMError,
    ModelRefusal,
    TruncatedOutput,
)
from agentos.llm.remote import (
    DEFAULT_RETRY_WINDOW,
    Ledger,
    RemoteProvider,
    raw_text,
    reply_object,
    schema_instruction,
    translate_sdk_error,
)

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


def uses_tool(schema: dict | None) -> bool:
    """Tool input schemas must be a plain object at the root (no oneOf/anyOf/allOf there)."""
    return schema is not None and schema.get("type") == "object" and not ({"oneOf", "anyOf", "allOf"} & set(schema))


def _input_tokens(usage: dict) -> Any:
    """Input tokens including the cached ones, which are billed too (at other rates)."""
    base = usage.get("input_tokens")
    if isinstance(base, bool) or not isinstance(base, int):
        return None
    cached = [usage.get(key) for key in ("cache_creation_input_tokens", "cache_read_input_tokens")]
    return base + sum(value for value in cached if isinstance(value, int) and not isinstance(value, bool) and value > 0)


class AnthropicProvider(RemoteProvider):
    name = "anthropic"
    default_max_tokens = DEFAULT_MAX_TOKENS

    def __init__(self, *, api_key: str, model: str, base_url: str | None = None, timeout: float = 60.0,
                 max_retries: int = 3, retry_window: float = DEFAULT_RETRY_WINDOW, **options: Any) -> None:
        super().__init__(model=model, base_url=base_url or "https://api.anthropic.com", timeout=timeout,
                         max_retries=max_retries, retry_window=retry_window, **options)
        # The SDK's own retries are off: ours (remote.RemoteProvider) honour the call's window.
        self.client = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)

    def _attempt(self, request: LLMRequest, max_tokens: int | None, ledger: Ledger) -> LLMResult:
        system, turns = split_messages(request.messages)
        schema = request.response_schema
        kwargs: dict[str, Any] = {"model": self.model, "messages": turns,
                                  "max_tokens": max_tokens or DEFAULT_MAX_TOKENS}
        if request.temperature is not None:
            kwargs["extra_body"] = {"temperature": request.temperature}
        if uses_tool(schema):
            kwargs["tools"] = [{"name": RESPOND_TOOL, "description": "Give the answer as structured data.",
                                "input_schema": schema}]
            kwargs["tool_choice"] = {"type": "tool", "name": RESPOND_TOOL}
        elif schema is not None:
            system = (system + "\n\n" if system else "") + schema_instruction(schema)
        if system:
            kwargs["system"] = system
        sent = ([{"role": "system", "content": system}] if system else []) + turns
        ledger.attempts += 1
        ledger.messages_sent = sent
        try:
            text = raw_text(self.client.messages.with_raw_response.create(**kwargs))
        except anthropic.AnthropicError as error:
            raise translate_sdk_error(error, anthropic, self.name) from None
        return self._read(text, request, sent, kwargs["max_tokens"], ledger)

    def _read(self, text: str, request: LLMRequest, sent: list[dict], max_tokens: int, ledger: Ledger) -> LLMResult:
        body = reply_object(text, self.name)
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        content = body.get("content")
        if not isinstance(content, list) or not all(isinstance(b, dict) and isinstance(b.get("type"), str)
                                                    for b in content):
            if usage:
                ledger.bill(_input_tokens(usage), usage.get("output_tokens"), messages=sent, text="",
                        reported_cached=usage.get("cache_read_input_tokens"))
            raise LLMBadResponse(f"{self.name}: the reply has no content blocks")
        texts = [block.get("text") for block in content if block["type"] == "text"]
        inputs = [block.get("input") for block in content if block["type"] == "tool_use"]
        if not all(isinstance(item, str) for item in texts) or not all(isinstance(item, dict) for item in inputs):
            raise LLMBadResponse(f"{self.name}: a content block has no text or input")
        output = "".join(texts)
        if uses_tool(request.response_schema) and inputs:
            # Validated like any other text so a non-conforming tool input is InvalidModelOutput too.
            output = json.dumps(inputs[0], ensure_ascii=False)
        ledger.bill(_input_tokens(usage), usage.get("output_tokens"), messages=sent, text=output,
                        reported_cached=usage.get("cache_read_input_tokens"))
        stop = body.get("stop_reason")
        if stop == "max_tokens":
            raise TruncatedOutput(f"the reply was cut off at max_tokens={max_tokens}", raw_text=output)
        if stop == "refusal":
            raise ModelRefusal("the model refused to answer", raw_text=output)
        if not output.strip():
            raise EmptyModelOutput("the model returned no content", raw_text=output)
        schema = request.response_schema
        data = parse_json_output(output, schema) if schema is not None else None
        model = body.get("model") if isinstance(body.get("model"), str) and body.get("model") else self.model
        return LLMResult(text=output, data=data, tokens_in=0, tokens_out=0, model=model, latency_ms=0)


def translate_error(error: anthropic.AnthropicError) -> LLMError:
    return translate_sdk_error(error, anthropic, "anthropic")
