"""The one interface every LLM provider implements, its data and its errors.

A provider turns an :class:`LLMRequest` (messages plus an optional response JSON Schema)
into an :class:`LLMResult`. When a schema is given the provider returns the parsed JSON in
``data`` and guarantees it validates, or raises :class:`InvalidModelOutput` so the
orchestrator can put the one-line error into the context and ask again.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

COMPACT_LIMIT = 300


@dataclass
class LLMRequest:
    messages: list[dict[str, str]]
    response_schema: dict | None
    schema_name: str  # the prompt slug, e.g. "plan" or "agent_research"
    temperature: float | None = None
    max_tokens: int | None = None
    # The template variables of the rendered prompt; only the offline rule set reads them.
    variables: dict = field(default_factory=dict)


@dataclass
class LLMResult:
    text: str
    data: dict | None
    tokens_in: int
    tokens_out: int
    model: str
    latency_ms: int


def one_line(text: str, limit: int = COMPACT_LIMIT) -> str:
    """Collapse whitespace and cut to ``limit`` characters: errors go into prompts and logs."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class LLMError(Exception):
    """A provider call that did not produce a usable result."""

    retryable = False
    kind = "llm_error"

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable

    def compact(self) -> str:
        return one_line(f"{self.kind}: {self.message}")


class LLMAuthError(LLMError):
    kind = "auth_error"


class LLMRateLimited(LLMError):
    kind = "rate_limited"
    retryable = True


class LLMTimeout(LLMError):
    kind = "timeout"
    retryable = True


class LLMBadResponse(LLMError):
    kind = "bad_response"


class InvalidModelOutput(LLMError):
    """The model answered, but not with JSON that fits the schema; asking again may help."""

    kind = "invalid_output"
    retryable = True

    def __init__(self, message: str, *, raw_text: str) -> None:
        super().__init__(message)
        self.raw_text = raw_text


class Provider(ABC):
    name: str = ""
    model: str = ""

    @abstractmethod
    def complete(self, request: LLMRequest) -> LLMResult:
        """One call to the model; raises an LLMError subclass on failure."""


_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```\s*$", re.DOTALL)


def parse_json_output(text: str, schema: dict | None) -> dict:
    """Parse ``text`` as one JSON object and validate it against ``schema``.

    Servers in plain JSON mode often wrap the object in a Markdown fence; that is unwrapped.
    """
    match = _FENCE.match(text or "")
    body = match.group(1) if match else (text or "")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as error:
        raise InvalidModelOutput(f"output is not JSON ({error.msg} at line {error.lineno} column {error.colno})",
                                 raw_text=text) from None
    if not isinstance(data, dict):
        raise InvalidModelOutput(f"output is JSON but not an object (got {type(data).__name__})", raw_text=text)
    problem = schema_problem(data, schema)
    if problem:
        raise InvalidModelOutput(f"output does not match the schema: {problem}", raw_text=text)
    return data


def schema_problem(instance: Any, schema: dict | None) -> str | None:
    """The most relevant validation error of ``instance`` as one line, or None when valid."""
    if not schema:
        return None
    error = best_match(Draft202012Validator(schema).iter_errors(instance))
    if error is None:
        return None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    return one_line(f"{where or '(root)'}: {error.message}", 240)


def count_tokens(text: str) -> int:
    """Token count with the prompts app's tokenizer; a rough estimate until it is importable."""
    try:
        from prompts.tokens import count_tokens as prompt_count_tokens
    except ImportError:
        return max(1, len(text) // 4) if text else 0
    return prompt_count_tokens(text)


def messages_tokens(messages: list[dict[str, str]]) -> int:
    return sum(count_tokens(str(message.get("content", ""))) for message in messages)


def api_error_message(error: Exception) -> str:
    """The server's own message when it sent one, else the SDK's."""
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        if inner.get("message"):
            return one_line(str(inner["message"]), 200)
    return one_line(str(getattr(error, "message", None) or error), 200)


def translate_sdk_error(error: Exception, sdk: Any, name: str) -> LLMError:
    """An exception of the ``openai`` or ``anthropic`` SDK (same exception classes, both are
    generated from one template) as one of ours, with a one-line message naming the cause."""
    message = api_error_message(error)
    if isinstance(error, sdk.APITimeoutError):
        return LLMTimeout(f"{name}: the request timed out")
    if isinstance(error, sdk.APIConnectionError):
        return LLMBadResponse(f"{name}: cannot connect to the server ({message})", retryable=True)
    if isinstance(error, (sdk.AuthenticationError, sdk.PermissionDeniedError)):
        return LLMAuthError(f"{name}: HTTP {error.status_code} authentication failed: {message}")
    if isinstance(error, sdk.RateLimitError):
        return LLMRateLimited(f"{name}: HTTP 429 rate limited after retries: {message}")
    if isinstance(error, sdk.APIStatusError):
        return LLMBadResponse(f"{name}: HTTP {error.status_code}: {message}", retryable=error.status_code >= 500)
    return LLMBadResponse(f"{name}: {type(error).__name__}: {message}")
