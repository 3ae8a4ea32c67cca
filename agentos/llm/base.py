"""The one interface every LLM provider implements, and its data.

A provider turns an :class:`LLMRequest` (messages plus an optional response JSON Schema)
into an :class:`LLMResult`. When a schema is given the provider returns the parsed JSON in
``data`` and guarantees it validates.

The contract of :meth:`Provider.complete`: it returns an :class:`LLMResult` or raises an
:class:`~agentos.llm.errors.LLMError`, nothing else. Each error has a ``kind`` saying who
must act (``model``, ``transient``, ``configuration``, ``internal``; see
:mod:`agentos.llm.errors`), a stable ``code`` and a one-line ``compact()``. An unexpected
exception inside a provider becomes :class:`~agentos.llm.errors.LLMInternalError` naming
the exception's class, so a caller never needs a bare ``except Exception``.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from agentos.llm.errors import (
    COMPACT_LIMIT,
    EmptyModelOutput,
    InvalidModelOutput,
    LLMError,
    LLMInternalError,
    one_line,
)
from agentos.llm.validation import schema_problem

__all__ = ["COMPACT_LIMIT", "LLMRequest", "LLMResult", "Provider", "count_tokens", "messages_tokens", "one_line",
           "parse_json_output", "schema_problem"]


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
    tokens_in: int  # summed over every attempt the model billed (a truncated first try, ...)
    tokens_out: int
    model: str
    latency_ms: int
    # True when some of the counts come from the offline tokenizer (the server sent no usage).
    tokens_estimated: bool = False
    # The share of tokens_in the provider served from its prompt cache (as it reported it).
    tokens_cached: int = 0
    # The messages exactly as the server received them (with the schema instruction when the
    # provider added one), in the request's role/content shape; None means request.messages.
    messages_sent: list[dict] | None = None
    attempts: int = 1  # HTTP requests made, retries included


class Provider(ABC):
    name: str = ""
    model: str = ""

    def complete(self, request: LLMRequest) -> LLMResult:
        """One call to the model. Raises only :class:`LLMError` subclasses."""
        try:
            return self._complete(request)
        except LLMError:
            raise
        except Exception as error:  # the contract: nothing but LLMError leaves a provider
            raise LLMInternalError.wrap(error, self.name or type(self).__name__) from error

    @abstractmethod
    def _complete(self, request: LLMRequest) -> LLMResult:
        """The provider's own call; :meth:`complete` turns stray exceptions into internal errors."""


_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```\s*$", re.DOTALL)


def parse_json_output(text: str, schema: dict | None) -> dict:
    """Parse ``text`` as one JSON object and validate it against ``schema``.

    Servers in plain JSON mode often wrap the object in a Markdown fence; that is unwrapped.
    """
    if not (text or "").strip():
        raise EmptyModelOutput("the model returned no content", raw_text=text or "")
    match = _FENCE.match(text or "")
    body = match.group(1) if match else (text or "")
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, RecursionError) as error:
        where = f" ({error.msg} at line {error.lineno} column {error.colno})" if isinstance(
            error, json.JSONDecodeError) else ""
        raise InvalidModelOutput(f"output is not JSON{where}", raw_text=text) from None
    if not isinstance(data, dict):
        raise InvalidModelOutput(f"output is JSON but not an object (got {type(data).__name__})", raw_text=text)
    problem = schema_problem(data, schema)
    if problem:
        raise InvalidModelOutput(f"output does not match the schema: {problem}", raw_text=text)
    return data


def count_tokens(text: str) -> int:
    """Token count with the prompts app's offline tokenizer."""
    from prompts.tokens import count_tokens as prompt_count_tokens

    return prompt_count_tokens(text or "")


def messages_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(count_tokens(str(message.get("content", ""))) for message in messages)
