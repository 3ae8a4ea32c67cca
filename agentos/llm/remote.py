"""What the HTTP providers (openai, anthropic) share: retries, error translation, billing.

One call to :meth:`RemoteProvider.complete`:

1. Each attempt sends one request through the SDK with the SDK's own retries off
   (``max_retries=0``), so retries do not multiply; the raw body is parsed here, so an
   HTML page or a reply of the wrong shape is a typed transient error, not an
   ``AttributeError`` deep in the SDK.
2. A transient error (429, 5xx, timeout, connection, garbled reply) is retried with
   exponential backoff and full jitter, or after the server's ``Retry-After``, while the
   next try would start inside ``retry_window`` seconds and at most ``max_retries`` times.
   Then the error is raised with ``retry_after`` set, so the caller can wait without
   holding a thread.
3. A truncated reply (``finish_reason: length`` / ``stop_reason: max_tokens``) is asked
   once more with a larger ``max_tokens`` (bounded by :data:`MAX_TOKENS_CEILING`) before
   it is raised as :class:`TruncatedOutput`.
4. Every reply that reached the model is billed in a :class:`Ledger`: the server's usage,
   or the offline tokenizer's count marked as estimated where the server sent none. The
   result or the error carries the sum, the attempts and the messages sent.
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentos.llm.base import LLMRequest, LLMResult, Provider, count_tokens, messages_tokens
from agentos.llm.errors import (
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
    TruncatedOutput,
    one_line,
)

DEFAULT_RETRY_WINDOW = 20.0
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
MAX_TOKENS_CEILING = 8192
# Words of a 400's message that mean "this server does not take that parameter".
_UNSUPPORTED = ("unsupported", "not supported", "unrecognized", "unknown parameter", "unknown field",
                "extra inputs", "extra_forbidden", "not permitted", "is not allowed", "invalid parameter")
_NO_MODEL = re.compile(r"\bmodel\b.{0,80}\b(?:not found|does not exist|not exist|is not available|not supported)"
                       r"|\b(?:unknown|invalid|no such|unsupported)\s+model\b|model_not_found", re.I)


@dataclass
class Ledger:
    """What one ``complete()`` cost and sent, over all its attempts."""

    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0  # the share of tokens_in the provider read from its prompt cache
    estimated: bool = False
    attempts: int = 0
    messages_sent: list[dict] | None = None
    truncation_retried: bool = False

    def bill(self, reported_in: Any, reported_out: Any, *, messages: list[dict], text: str,
             reported_cached: Any = None) -> None:
        """Add one reply's usage; a missing, null or nonsensical count is estimated offline
        (cached tokens, a part of the input, are only ever reported: none when unsure)."""
        cached = _count(reported_cached)
        if cached is not None and _count(reported_in) is not None:
            self.tokens_cached += min(cached, _count(reported_in))
        if _count(reported_in) is None:
            self.tokens_in += messages_tokens(messages)
            self.estimated = True
        else:
            self.tokens_in += _count(reported_in)
        if _count(reported_out) is None:
            self.tokens_out += count_tokens(text)
            self.estimated = True
        else:
            self.tokens_out += _count(reported_out)

    def stamp(self, error: LLMError) -> LLMError:
        error.tokens_in, error.tokens_out, error.tokens_estimated = self.tokens_in, self.tokens_out, self.estimated
        error.attempts, error.messages_sent = self.attempts, self.messages_sent
        return error


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != value:
        return None
    return int(value)


def retry_after_seconds(headers: Any) -> float | None:
    """``retry-after-ms``, or ``retry-after`` as seconds or an HTTP date, in seconds."""
    if headers is None:
        return None
    try:
        milliseconds = headers.get("retry-after-ms")
        if milliseconds is not None:
            return max(0.0, float(milliseconds) / 1000)
    except (TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def larger_max_tokens(current: int | None, default: int) -> int | None:
    """The ``max_tokens`` of the one retry after a truncation, or None when none is left."""
    bigger = min(max(2 * (current or default), 1024), MAX_TOKENS_CEILING)
    return bigger if bigger > (current or 0) else None


def api_error_message(error: Exception) -> str:
    """The server's own message when it sent one, else the SDK's."""
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        if inner.get("message"):
            return one_line(str(inner["message"]), 200)
    return one_line(str(getattr(error, "message", None) or error), 200)


def status_error(status: int, message: str, headers: Any, name: str) -> LLMError:
    """An HTTP error status as the typed error of whoever must act."""
    lowered = message.lower()
    retry_after = retry_after_seconds(headers)
    if status in (401, 403):
        return LLMAuthError(f"{name}: HTTP {status} authentication failed: {message}", status=status)
    if status == 404 or (status in (400, 422) and _NO_MODEL.search(message)):
        return LLMUnknownModel(f"{name}: HTTP {status} unknown model or endpoint (check LLM_MODEL and the base "
                               f"URL): {message}", status=status)
    if status == 429:
        return LLMRateLimited(f"{name}: HTTP 429 rate limited: {message}", status=status, retry_after=retry_after)
    if status == 408:
        return LLMTimeout(f"{name}: HTTP 408 request timeout: {message}", status=status, retry_after=retry_after)
    if status in (409, 425) or status >= 500:
        return LLMServerError(f"{name}: HTTP {status}: {message}", status=status, retry_after=retry_after)
    if status == 402:
        return LLMConfigurationError(f"{name}: HTTP 402 payment required: {message}", code="payment_required",
                                     status=status)
    if status in (400, 422) and any(words in lowered for words in _UNSUPPORTED):
        return LLMUnsupportedParameter(f"{name}: HTTP {status} unsupported parameter: {message}", status=status)
    return LLMBadRequest(f"{name}: HTTP {status}: {message}", status=status)


def translate_sdk_error(error: Exception, sdk: Any, name: str) -> LLMError:
    """An exception of the ``openai`` or ``anthropic`` SDK (same exception classes, both are
    generated from one template) as one of ours, with a one-line message naming the cause."""
    message = api_error_message(error)
    if isinstance(error, sdk.APITimeoutError):
        return LLMTimeout(f"{name}: the request timed out")
    if isinstance(error, sdk.APIConnectionError):
        return LLMConnectionError(f"{name}: cannot connect to the server ({message})")
    if isinstance(error, sdk.APIStatusError):
        response = getattr(error, "response", None)
        return status_error(error.status_code, message, getattr(response, "headers", None), name)
    if isinstance(error, sdk.APIError):  # a reply the SDK could not read
        return LLMBadResponse(f"{name}: unreadable reply: {message}")
    return LLMInternalError(f"{name}: {type(error).__name__}: {message}")


def reply_object(text: str, name: str) -> dict:
    """A 200 reply's body as a JSON object, or a transient :class:`LLMBadResponse`."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        raise LLMBadResponse(f"{name}: the server's reply is not JSON (starts {one_line(text, 60)!r})") from None
    if not isinstance(body, dict):
        raise LLMBadResponse(f"{name}: the server's reply is JSON but not an object")
    if isinstance(body.get("error"), dict | str):  # some proxies answer 200 with an error object
        error = body["error"]
        detail = error.get("message", "") if isinstance(error, dict) else error
        raise LLMBadResponse(f"{name}: the server answered 200 with an error: {one_line(str(detail), 160)}")
    return body


def raw_text(raw: Any) -> str:
    """The body of an SDK raw response (a property in openai's, a method in anthropic's)."""
    text = raw.text
    return text() if callable(text) else text


class RemoteProvider(Provider):
    """A provider over HTTP; subclasses implement :meth:`_attempt` (one request, one reply)."""

    default_max_tokens = 2048

    def __init__(self, *, model: str, base_url: str | None, timeout: float, max_retries: int,
                 retry_window: float = DEFAULT_RETRY_WINDOW, backoff_base: float = BACKOFF_BASE,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.model = model
        self.base_url = base_url or ""
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_window = retry_window
        self.backoff_base = backoff_base
        self._sleep = sleep

    def _complete(self, request: LLMRequest) -> LLMResult:
        started = time.monotonic()
        ledger = Ledger(messages_sent=request.messages)
        max_tokens = request.max_tokens
        try:
            while True:
                try:
                    result = self._retrying(request, max_tokens, ledger)
                    break
                except TruncatedOutput:
                    bigger = larger_max_tokens(max_tokens, self.default_max_tokens)
                    if ledger.truncation_retried or bigger is None:
                        raise
                    ledger.truncation_retried, max_tokens = True, bigger
        except LLMError as error:
            ledger.stamp(error)
            raise
        except Exception as error:  # a bug here still ends as a typed error with the billing so far
            raise ledger.stamp(LLMInternalError.wrap(error, self.name)) from error
        result.tokens_in, result.tokens_out, result.tokens_estimated = (ledger.tokens_in, ledger.tokens_out,
                                                                         ledger.estimated)
        result.tokens_cached = ledger.tokens_cached
        result.attempts, result.messages_sent = ledger.attempts, ledger.messages_sent
        result.latency_ms = int((time.monotonic() - started) * 1000)
        return result

    def _retrying(self, request: LLMRequest, max_tokens: int | None, ledger: Ledger) -> LLMResult:
        deadline = time.monotonic() + self.retry_window
        retries = 0
        while True:
            try:
                return self._attempt(request, max_tokens, ledger)
            except LLMTransientError as error:
                delay = error.retry_after if error.retry_after is not None else self.backoff(retries)
                error.retry_after = round(delay, 3)
                if retries >= self.max_retries or time.monotonic() + delay > deadline:
                    raise
                self._sleep(delay)
                retries += 1

    def backoff(self, retries: int) -> float:
        """Exponential backoff with jitter: between half and all of base * 2^retries, capped."""
        ceiling = min(self.backoff_base * 2 ** retries, BACKOFF_CAP)
        return ceiling / 2 + random.random() * ceiling / 2

    @abstractmethod
    def _attempt(self, request: LLMRequest, max_tokens: int | None, ledger: Ledger) -> LLMResult:
        """One request (``ledger.attempts`` += 1 per HTTP request); bill what reached the model."""


def schema_instruction(schema: dict) -> str:
    return "Reply with one JSON object, and nothing else, that matches this JSON Schema:\n" + json.dumps(schema)


def with_system_instruction(messages: list[dict], instruction: str) -> list[dict]:
    """``messages`` with ``instruction`` appended to the first system message (one is put
    first when there is none): after the user turns some chat templates refuse a system turn."""
    for position, message in enumerate(messages):
        if message.get("role") == "system":
            merged = {**message, "content": f"{message.get('content', '')}\n\n{instruction}"}
            return [*messages[:position], merged, *messages[position + 1:]]
    return [{"role": "system", "content": instruction}, *messages]
