"""Both HTTP providers, through their real SDKs, against a loopback fake server, in every fault mode.

Each mode queues the server's replies in the provider's own wire shape and states what
``complete()`` must do: succeed, or raise an error of a given kind and code; how many
requests reach the server (the retry behaviour); which tokens are recorded and whether
they are estimated. Timeouts, backoff and the retry window are small so each case is fast.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from agentos.llm import LLMError, LLMRequest
from agentos.llm.anthropic_provider import AnthropicProvider
from agentos.llm.base import count_tokens, messages_tokens
from agentos.llm.fake_server import (
    FakeLLMServer,
    Reply,
    anthropic_message,
    chat_completion,
    error_reply,
    html_page,
)
from agentos.llm.openai_provider import OpenAIProvider

SCHEMA = {"type": "object", "properties": {"summary": {"type": "string", "minLength": 1}},
          "required": ["summary"], "additionalProperties": False}
MESSAGES = [{"role": "system", "content": "Summarise the text."}, {"role": "user", "content": "Some text."}]
GOOD = {"summary": "short"}
TIMEOUT, MAX_RETRIES = 0.4, 2
# The retry window: roomy, so a case that expects a retry gets it however slowly the first
# attempt runs on a loaded machine; a case about the window itself sets its own.
WINDOW = 5.0
PROVIDERS = ("openai", "anthropic")
# What each provider's fake server reports as usage in a normal reply (fake_server defaults).
USAGE = {"openai": (11, 7), "anthropic": (13, 5)}


def request(**changes: Any) -> LLMRequest:
    return LLMRequest(**{"messages": MESSAGES, "response_schema": SCHEMA, "schema_name": "summarize",
                         "temperature": 0.2, "max_tokens": 200, **changes})


def build(name: str, server: FakeLLMServer, **options: Any):
    settings = {"api_key": "test-key", "timeout": TIMEOUT, "max_retries": MAX_RETRIES, "retry_window": WINDOW,
                "backoff_base": 0.01, **options}
    if name == "openai":
        return OpenAIProvider(model="fake-model", base_url=server.url + "/v1", **settings)
    return AnthropicProvider(model="fake-claude", base_url=server.url, **settings)


# --- replies in each provider's shape -------------------------------------------------------

def answer(name: str, data: Any = GOOD, **options: Any) -> Reply:
    """A normal reply carrying ``data`` (a dict as JSON / tool input, a str as plain text)."""
    if name == "openai":
        finish = {"stop_reason": "finish_reason"}
        kwargs = {finish.get(key, key): value for key, value in options.items()}
        if kwargs.get("finish_reason") == "max_tokens":
            kwargs["finish_reason"] = "length"
        return chat_completion(data if isinstance(data, str) else json.dumps(data), **kwargs)
    if isinstance(data, str):
        return anthropic_message(text=data, **options)
    return anthropic_message(tool_input=data, **options)


def usage(name: str, tokens_in: Any, tokens_out: Any = "absent") -> dict:
    keys = ("prompt_tokens", "completion_tokens") if name == "openai" else ("input_tokens", "output_tokens")
    reported = {keys[0]: tokens_in}
    if tokens_out != "absent":
        reported[keys[1]] = tokens_out
    return reported


def no_choices(name: str) -> Reply:
    if name == "openai":
        return Reply(body={"id": "c", "object": "chat.completion", "model": "fake-model", "choices": [],
                           "usage": {"prompt_tokens": 11, "completion_tokens": 0}})
    return Reply(body={"id": "m", "type": "message", "model": "fake-claude", "stop_reason": "end_turn",
                       "usage": {"input_tokens": 13, "output_tokens": 0}})


def choice_without_message(name: str) -> Reply:
    if name == "openai":
        return Reply(body={"id": "c", "object": "chat.completion", "model": "fake-model",
                           "choices": [{"index": 0, "finish_reason": "stop"}]})
    return Reply(body={"id": "m", "type": "message", "model": "fake-claude", "stop_reason": "end_turn",
                       "content": [{"type": "text"}]})


def empty_content(name: str) -> Reply:
    if name == "openai":
        return chat_completion(None)
    return anthropic_message()


def refusal(name: str) -> Reply:
    if name == "openai":
        reply = chat_completion(None)
        reply.body["choices"][0]["message"]["refusal"] = "I can't help with that."
        return reply
    return anthropic_message(text="", stop_reason="refusal")


def schema_refused(name: str) -> Reply:
    if name == "openai":
        return error_reply(400, "response_format json_schema is not supported by this server")
    return error_reply(400, "tools.0.input_schema: unsupported parameter")


# --- the modes --------------------------------------------------------------------------------

@dataclass
class Mode:
    replies: Any  # callable(provider name) -> list of Reply
    kind: str | None = None  # None: success
    code: str | None = None
    requests: int | dict = 1  # or {provider name: requests}
    tokens: Any = "usage"  # "usage": the fake's usage per billed reply; "estimated"; "partial"; or (in, out)
    billed: int = 1  # replies whose usage is summed
    providers: tuple[str, ...] = PROVIDERS
    checks: dict = field(default_factory=dict)
    window: float = WINDOW  # the provider's retry_window


def error_mode(status: int, message: str, count: int, **headers: str):
    return lambda name: [error_reply(status, message, **headers) for _ in range(count)]


MODES = {
    "ok": Mode(lambda n: [answer(n)]),
    "429 with Retry-After": Mode(lambda n: [error_reply(429, "slow down", **{"retry-after": "0.05"}), answer(n)],
                                 requests=2, checks={"min_seconds": 0.05}),
    "429 longer than the window": Mode(error_mode(429, "quota exceeded", 1, **{"retry-after": "30"}),
                                       "transient", "rate_limited", tokens=(0, 0), billed=0,
                                       checks={"retry_after": 30.0, "max_seconds": 1.0}),
    "500 once": Mode(lambda n: [error_reply(500, "boom"), answer(n)], requests=2),
    "500 always": Mode(error_mode(500, "boom", MAX_RETRIES + 1), "transient", "server_error",
                       requests=MAX_RETRIES + 1, tokens=(0, 0), billed=0, checks={"retry_after": "set"}),
    "529 overloaded always": Mode(error_mode(529, "overloaded", MAX_RETRIES + 1), "transient", "server_error",
                                  requests=MAX_RETRIES + 1, tokens=(0, 0), billed=0),
    "stall beyond the timeout": Mode(lambda n: [Reply(body=answer(n).body, delay_s=TIMEOUT + 1.0)],
                                     "transient", "timeout", tokens=(0, 0), billed=0,
                                     checks={"retry_after": "set", "max_seconds": TIMEOUT + 0.8},
                                     window=TIMEOUT - 0.1),  # a try after the timeout starts past it
    "non-JSON": Mode(lambda n: [answer(n, "Sure! Here is the summary.")], "model", "invalid_output",
                     checks={"raw_text": "Sure! Here is the summary."}),
    "HTML body with 200": Mode(lambda n: [html_page() for _ in range(MAX_RETRIES + 1)], "transient",
                               "bad_response", requests=MAX_RETRIES + 1, tokens=(0, 0), billed=0),
    "HTML then success": Mode(lambda n: [html_page(), answer(n)], requests=2),
    "empty choices": Mode(lambda n: [no_choices(n) for _ in range(MAX_RETRIES + 1)], "transient", "bad_response",
                          requests=MAX_RETRIES + 1, tokens="no_output", billed=MAX_RETRIES + 1),
    "choice without message": Mode(lambda n: [choice_without_message(n) for _ in range(MAX_RETRIES + 1)],
                                   "transient", "bad_response", requests=MAX_RETRIES + 1, tokens=(0, 0), billed=0),
    "empty content": Mode(lambda n: [empty_content(n)], "model", "empty_output"),
    "null usage": Mode(lambda n: [answer(n, usage=usage(n, None, None))], tokens="estimated"),
    "no usage": Mode(lambda n: [answer(n, usage=None)], tokens="estimated"),
    "partial usage": Mode(lambda n: [answer(n, usage=usage(n, 12))], tokens="partial"),
    "truncated": Mode(lambda n: [answer(n, "{\"summary\": \"cut", stop_reason="max_tokens") for _ in range(2)],
                      "model", "truncated", requests=2, billed=2, checks={"max_tokens": [200, 1024]}),
    "truncated then complete": Mode(lambda n: [answer(n, "{\"summary\": \"cut", stop_reason="max_tokens"),
                                               answer(n)], requests=2, billed=2),
    "refusal": Mode(lambda n: [refusal(n)], "model", "refusal"),
    "401": Mode(error_mode(401, "invalid api key", 1), "configuration", "auth_error", tokens=(0, 0), billed=0),
    "403": Mode(error_mode(403, "forbidden", 1), "configuration", "auth_error", tokens=(0, 0), billed=0),
    "unknown model": Mode(error_mode(404, "The model `nope` does not exist", 1), "configuration",
                          "unknown_model", tokens=(0, 0), billed=0),
    "unknown model as a 400": Mode(error_mode(400, "model 'nope' not found", 2), "configuration", "unknown_model",
                                   requests={"openai": 2, "anthropic": 1}, tokens=(0, 0), billed=0),
    "402": Mode(error_mode(402, "credit balance too low", 1), "configuration", "payment_required",
                tokens=(0, 0), billed=0),
    "413": Mode(error_mode(413, "request too large", 1), "configuration", "bad_request", tokens=(0, 0), billed=0),
    "400 to json_schema": Mode(lambda n: [schema_refused(n), answer(n)], requests=2,
                               providers=("openai",), checks={"json_mode": True}),
    "400 to the forced tool": Mode(lambda n: [schema_refused(n)], "configuration", "unsupported_parameter",
                                   tokens=(0, 0), billed=0, providers=("anthropic",)),
    # openai: a 400 to json_schema is taken for a refusal of json_schema; JSON mode gets it too.
    "400 other": Mode(error_mode(400, "prompt is too long", 2), "configuration", "bad_request",
                      requests={"openai": 2, "anthropic": 1}, tokens=(0, 0), billed=0),
}


CASES = [pytest.param(name, mode, id=f"{name}-{title}") for title, mode in MODES.items()
         for name in PROVIDERS if name in mode.providers]


@pytest.fixture
def server():
    with FakeLLMServer() as running:
        yield running


def expected_tokens(mode: Mode, name: str, sent: list[dict], text: str) -> tuple[int, int, bool]:
    tokens_in, tokens_out = USAGE[name]
    if mode.tokens == "usage":
        return tokens_in * mode.billed, tokens_out * mode.billed, False
    if mode.tokens == "no_output":
        return tokens_in * mode.billed, 0, False
    if mode.tokens == "estimated":
        return messages_tokens(sent), count_tokens(text), True
    if mode.tokens == "partial":
        return 12, count_tokens(text), True
    return (*mode.tokens, False)


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_conformance(server, name, mode):
    server.queue(*mode.replies(name))
    llm = build(name, server, retry_window=mode.window)
    started = time.monotonic()
    try:
        outcome: Any = llm.complete(request())
    except LLMError as error:
        outcome = error
    elapsed = time.monotonic() - started
    requests = mode.requests[name] if isinstance(mode.requests, dict) else mode.requests
    assert len(server.requests) == requests, server.requests

    if mode.kind is None:
        assert not isinstance(outcome, LLMError), outcome.compact()
        assert outcome.data == GOOD
        assert outcome.attempts == requests
        text = outcome.text
    else:
        assert isinstance(outcome, LLMError), outcome
        assert (outcome.kind, outcome.code) == (mode.kind, mode.code), outcome.compact()
        assert outcome.compact().startswith(f"{mode.code}: ") and "\n" not in outcome.compact()
        assert outcome.attempts == requests
        assert outcome.retryable is (mode.kind != "configuration")
        text = getattr(outcome, "raw_text", "")
        if mode.kind == "transient":
            assert outcome.retry_after is not None and outcome.retry_after >= 0

    # The messages reported as sent are those the server received (for anthropic, in the
    # request's shape: the system text first, then the turns).
    sent = outcome.messages_sent
    body = server.requests[-1]["body"]
    if name == "openai":
        assert sent == body["messages"]
    else:
        assert sent == ([{"role": "system", "content": body["system"]}] if "system" in body else []) + body["messages"]
        assert body["temperature"] == 0.2 and body["max_tokens"] >= 200
    assert (outcome.tokens_in, outcome.tokens_out, outcome.tokens_estimated) == expected_tokens(
        mode, name, sent, text)

    checks = mode.checks
    if "retry_after" in checks and checks["retry_after"] != "set":
        assert outcome.retry_after == pytest.approx(checks["retry_after"], abs=1)
    if "min_seconds" in checks:
        assert elapsed >= checks["min_seconds"]
    if "max_seconds" in checks:
        assert elapsed < checks["max_seconds"]
    if "raw_text" in checks:
        assert outcome.raw_text == checks["raw_text"]
    if "max_tokens" in checks:
        assert [r["body"]["max_tokens"] for r in server.requests] == checks["max_tokens"]
    if checks.get("json_mode"):
        assert_json_mode_fallback(server, llm, outcome)


def assert_json_mode_fallback(server, llm, result):
    first, second = (r["body"] for r in server.requests)
    assert first["response_format"]["type"] == "json_schema"
    assert second["response_format"] == {"type": "json_object"}
    # The schema instruction is in the system message, before the user turn, and reported as sent.
    assert second["messages"][0]["role"] == "system" and json.dumps(SCHEMA) in second["messages"][0]["content"]
    assert second["messages"][1:] == MESSAGES[1:]
    assert result.messages_sent == second["messages"]
    server.queue(answer("openai"))
    llm.complete(request())  # remembered for this (base URL, model): no second json_schema attempt
    assert server.requests[2]["body"]["response_format"] == {"type": "json_object"}
    other = OpenAIProvider(api_key="k", model="other-model", base_url=llm.base_url, timeout=TIMEOUT)
    server.queue(answer("openai"))
    other.complete(request())  # another model on the same server still tries json_schema
    assert server.requests[3]["body"]["response_format"]["type"] == "json_schema"


@pytest.mark.parametrize("name", PROVIDERS)
def test_schema_violating_three_times(server, name):
    """The provider does not re-ask on a model error: each call is one billed request."""
    llm = build(name, server)
    for number in range(1, 4):
        server.queue(answer(name, {"summary": ""}))
        with pytest.raises(LLMError) as caught:
            llm.complete(request())
        error = caught.value
        assert (error.kind, error.code, error.attempts) == ("model", "invalid_output", 1)
        assert "summary: '' should be non-empty" in error.compact()
        assert (error.tokens_in, error.tokens_out) == USAGE[name]
        assert error.raw_text == json.dumps({"summary": ""})
        assert len(server.requests) == number


@pytest.mark.parametrize("name", PROVIDERS)
def test_unreachable_server_is_transient(name):
    cls = OpenAIProvider if name == "openai" else AnthropicProvider
    llm = cls(api_key="k", model="m", base_url="http://127.0.0.1:9", timeout=0.5, max_retries=1, retry_window=0.2,
              backoff_base=0.01)
    with pytest.raises(LLMError) as caught:
        llm.complete(request())
    assert (caught.value.kind, caught.value.code, caught.value.attempts) == ("transient", "connection_error", 2)


@pytest.mark.parametrize("name", PROVIDERS)
def test_an_unexpected_exception_is_an_internal_error(server, name, monkeypatch):
    llm = build(name, server)
    server.queue(answer(name))

    def broken(*args, **kwargs):
        raise KeyError("choices")

    monkeypatch.setattr(llm, "_read", broken)
    with pytest.raises(LLMError) as caught:
        llm.complete(request())
    error = caught.value
    assert (error.kind, error.code) == ("internal", "internal_error")
    assert error.compact() == f"internal_error: {name}: KeyError: 'choices'"
    assert error.attempts == 1 and isinstance(error.__cause__, KeyError)


@pytest.mark.parametrize("name", PROVIDERS)
def test_without_a_schema_plain_text(server, name):
    server.queue(answer(name, "plain words") if name == "openai" else anthropic_message(text="plain words"))
    result = build(name, server).complete(request(response_schema=None))
    assert (result.text, result.data, result.tokens_estimated) == ("plain words", None, False)


@pytest.mark.parametrize("name", PROVIDERS)
def test_cached_prompt_tokens_are_reported(server, name):
    """The provider's cache reads are recorded as ``tokens_cached`` (a part of tokens_in),
    so the cost can price them at the cached rate; a reply without them reports none."""
    if name == "openai":
        cached_usage = {"prompt_tokens": 1200, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 1024}}
    else:  # Anthropic reports cache reads and writes apart from input_tokens
        cached_usage = {"input_tokens": 100, "output_tokens": 9, "cache_read_input_tokens": 1024,
                        "cache_creation_input_tokens": 76}
    server.queue(answer(name, usage=cached_usage), answer(name),
                 answer(name, usage={**cached_usage, **({"prompt_tokens_details": {"cached_tokens": "x"}}
                                                        if name == "openai" else {"cache_read_input_tokens": -3})}))
    llm = build(name, server)
    first = llm.complete(request())
    assert (first.tokens_in, first.tokens_out, first.tokens_cached) == (1200, 9, 1024)
    assert llm.complete(request()).tokens_cached == 0
    nonsense = llm.complete(request())  # an unusable count is not guessed
    assert nonsense.tokens_cached == 0 and not nonsense.tokens_estimated
