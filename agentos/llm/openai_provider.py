"""OpenAI and every OpenAI-compatible server (Azure, vLLM, Ollama, llama.cpp) via the official SDK.

With a response schema the request asks for structured output (``json_schema``, strict
when the schema allows it). A server that rejects ``json_schema`` with a 400 gets the older
``json_object`` mode with the schema spelled out in the system message; that is remembered
for that (base URL, model) for an hour, not for the process. Either way the answer is
parsed and validated here, because compatible servers do not all enforce the schema.

Retries, error kinds and billing: :mod:`agentos.llm.remote`. The reply body is read raw and
checked here (choices, message, usage), so no reply shape can raise anything but an
:class:`~agentos.llm.errors.LLMError`.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import openai

from agentos.llm.base import LLMRequest, LLMResult, parse_json_output
from agentos.llm.errors import (
    EmptyModelOutput,
    LLMBadResponse,
    LLMError,
    ModelRefusal,
    TruncatedOutput,
    one_line,
)
from agentos.llm.remote import (
    DEFAULT_RETRY_WINDOW,
    Ledger,
    RemoteProvider,
    raw_text,
    reply_object,
    schema_instruction,
    translate_sdk_error,
    with_system_instruction,
)

__all__ = ["OpenAIProvider", "schema_instruction", "strict_compatible", "translate_error"]

JSON_MODE_MEMORY_SECONDS = 3600.0
# (base URL, model) -> when the server was seen to refuse json_schema but accept json_object.
_json_mode_only: dict[tuple[str, str], float] = {}
_json_mode_lock = threading.Lock()


def json_mode_only(base_url: str, model: str) -> bool:
    with _json_mode_lock:
        since = _json_mode_only.get((base_url, model))
        if since is not None and time.monotonic() - since > JSON_MODE_MEMORY_SECONDS:
            del _json_mode_only[(base_url, model)]  # the server may have been upgraded: try again
            return False
        return since is not None


def remember_json_mode(base_url: str, model: str) -> None:
    with _json_mode_lock:
        _json_mode_only[(base_url, model)] = time.monotonic()


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


def _bill(ledger: Ledger, usage: dict, messages: list[dict], text: str) -> None:
    """One reply's usage: prompt and completion tokens, and the prompt's cached share."""
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    ledger.bill(usage.get("prompt_tokens"), usage.get("completion_tokens"), messages=messages, text=text,
                reported_cached=cached)


def _content_text(content: Any) -> str:
    """A message's content: a string, null, or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict)
                       and isinstance(part.get("text", ""), str))
    raise LLMBadResponse(f"openai: the message content is {type(content).__name__}, not text")


class OpenAIProvider(RemoteProvider):
    name = "openai"
    default_max_tokens = 2048

    def __init__(self, *, api_key: str, model: str, base_url: str | None = None, timeout: float = 60.0,
                 max_retries: int = 3, retry_window: float = DEFAULT_RETRY_WINDOW, **options: Any) -> None:
        super().__init__(model=model, base_url=base_url or "https://api.openai.com/v1", timeout=timeout,
                         max_retries=max_retries, retry_window=retry_window, **options)
        # The SDK's own retries are off: ours (remote.RemoteProvider) honour the call's window.
        self.client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)

    def _attempt(self, request: LLMRequest, max_tokens: int | None, ledger: Ledger) -> LLMResult:
        kwargs: dict[str, Any] = {"model": self.model}
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        schema, messages = request.response_schema, request.messages
        if schema is None:
            text = self._post(kwargs, messages, ledger)
        elif json_mode_only(self.base_url, self.model):
            messages = with_system_instruction(messages, schema_instruction(schema))
            text = self._post({**kwargs, "response_format": {"type": "json_object"}}, messages, ledger)
        else:
            text = self._structured(request, kwargs, ledger)
            messages = ledger.messages_sent or messages
        return self._read(text, request, messages, max_tokens, ledger)

    def _structured(self, request: LLMRequest, kwargs: dict, ledger: Ledger) -> str:
        schema = request.response_schema or {}
        response_format = {"type": "json_schema", "json_schema": {
            "name": re.sub(r"[^a-zA-Z0-9_-]", "_", request.schema_name or "response")[:64],
            "schema": schema, "strict": strict_compatible(schema)}}
        try:
            return self._post({**kwargs, "response_format": response_format}, request.messages, ledger)
        except LLMError as error:
            if error.status != 400:
                raise
            # Many compatible servers reject json_schema with a 400; JSON mode is the fallback.
        messages = with_system_instruction(request.messages, schema_instruction(schema))
        text = self._post({**kwargs, "response_format": {"type": "json_object"}}, messages, ledger)
        # Only a server that accepted JSON mode after refusing json_schema is marked as lacking it.
        remember_json_mode(self.base_url, self.model)
        return text

    def _post(self, kwargs: dict, messages: list[dict], ledger: Ledger) -> str:
        ledger.attempts += 1
        ledger.messages_sent = messages
        try:
            raw = self.client.chat.completions.with_raw_response.create(messages=messages, **kwargs)
            return raw_text(raw)
        except openai.OpenAIError as error:
            raise translate_sdk_error(error, openai, self.name) from None

    def _read(self, text: str, request: LLMRequest, messages: list[dict], max_tokens: int | None,
              ledger: Ledger) -> LLMResult:
        body = reply_object(text, self.name)
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else None
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            if usage:
                _bill(ledger, usage, messages, "")
            raise LLMBadResponse(f"{self.name}: the reply has no choices")
        choice = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict):
            if usage:
                _bill(ledger, usage, messages, "")
            raise LLMBadResponse(f"{self.name}: the reply's choice has no message")
        content = _content_text(message.get("content"))
        usage = usage or {}
        _bill(ledger, usage, messages, content)
        finish = choice.get("finish_reason")
        if isinstance(message.get("refusal"), str) and message["refusal"].strip():
            raise ModelRefusal(f"the model refused: {one_line(message['refusal'], 200)}", raw_text=content)
        if finish == "length":
            limit = f"max_tokens={max_tokens}" if max_tokens else "the server's output limit"
            raise TruncatedOutput(f"the reply was cut off at {limit}", raw_text=content)
        if finish == "content_filter" and not content.strip():
            raise ModelRefusal("the reply was withheld by the server's content filter", raw_text=content)
        schema = request.response_schema
        if schema is None and not content.strip():
            raise EmptyModelOutput("the model returned no content", raw_text=content)
        data = parse_json_output(content, schema) if schema is not None else None
        model = body.get("model") if isinstance(body.get("model"), str) and body.get("model") else self.model
        return LLMResult(text=content, data=data, tokens_in=0, tokens_out=0, model=model, latency_ms=0)


def translate_error(error: openai.OpenAIError) -> LLMError:
    """The SDK's exception as one of ours, with a one-line message naming the cause."""
    return translate_sdk_error(error, openai, "openai")
