"""The openai provider through the real SDK and HTTP, against a loopback fake server."""

import json
import time

import pytest

from agentos.llm import (
    InvalidModelOutput,
    LLMAuthError,
    LLMBadRequest,
    LLMConnectionError,
    LLMRateLimited,
    LLMRequest,
    LLMServerError,
    LLMTimeout,
)
from agentos.llm.fake_server import FakeLLMServer, Reply, chat_completion, error_reply
from agentos.llm.openai_provider import OpenAIProvider, strict_compatible

SCHEMA = {"type": "object", "properties": {"summary": {"type": "string", "minLength": 1}},
          "required": ["summary"], "additionalProperties": False}
REQUEST = LLMRequest(messages=[{"role": "system", "content": "Summarise."}, {"role": "user", "content": "text"}],
                     response_schema=SCHEMA, schema_name="summarize", temperature=0.2, max_tokens=100)


@pytest.fixture
def server():
    with FakeLLMServer() as running:
        yield running


def provider(server, *, timeout=5.0, max_retries=2):
    return OpenAIProvider(api_key="test-key", model="fake-model", base_url=server.url + "/v1", timeout=timeout,
                          max_retries=max_retries)


def test_json_success_reports_tokens_and_sends_the_schema(server):
    server.queue(chat_completion('{"summary": "short"}', prompt_tokens=42, completion_tokens=5))
    result = provider(server).complete(REQUEST)
    assert result.data == {"summary": "short"}
    assert (result.tokens_in, result.tokens_out, result.model) == (42, 5, "fake-model")
    assert result.latency_ms >= 0
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    body = sent["body"]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"] == {"name": "summarize", "schema": SCHEMA, "strict": True}
    assert (body["temperature"], body["max_tokens"], body["messages"]) == (0.2, 100, REQUEST.messages)


def test_without_schema_returns_text(server):
    server.queue(chat_completion("plain words"))
    result = provider(server).complete(LLMRequest(messages=[{"role": "user", "content": "hi"}],
                                                  response_schema=None, schema_name="free"))
    assert (result.text, result.data) == ("plain words", None)
    assert "response_format" not in server.requests[0]["body"]


def test_non_json_content(server):
    server.queue(chat_completion("Sure! Here is the summary."))
    with pytest.raises(InvalidModelOutput) as caught:
        provider(server).complete(REQUEST)
    assert caught.value.raw_text == "Sure! Here is the summary."
    assert caught.value.retryable is True
    assert caught.value.compact().startswith("invalid_output: output is not JSON")


def test_schema_violating_json(server):
    server.queue(chat_completion('{"summary": ""}'))
    with pytest.raises(InvalidModelOutput, match="summary: '' should be non-empty"):
        provider(server).complete(REQUEST)


def test_fenced_json_is_accepted(server):
    server.queue(chat_completion('```json\n{"summary": "fenced"}\n```'))
    assert provider(server).complete(REQUEST).data == {"summary": "fenced"}


def test_auth_error(server):
    server.queue(error_reply(401, "Incorrect API key provided"))
    with pytest.raises(LLMAuthError) as caught:
        provider(server).complete(REQUEST)
    assert caught.value.compact() == "auth_error: openai: HTTP 401 authentication failed: Incorrect API key provided"
    assert caught.value.retryable is False
    assert len(server.requests) == 1  # never retried


def test_rate_limit_then_success_is_retried(server):
    server.queue(error_reply(429, "slow down", **{"retry-after-ms": "20"}), chat_completion('{"summary": "ok"}'))
    result = provider(server).complete(REQUEST)
    assert result.data == {"summary": "ok"}
    assert len(server.requests) == 2


def test_rate_limit_exhausts_retries(server):
    server.queue(*[error_reply(429, "quota exceeded", **{"retry-after-ms": "10"}) for _ in range(3)])
    with pytest.raises(LLMRateLimited, match="HTTP 429 rate limited: quota exceeded") as caught:
        provider(server, max_retries=2).complete(REQUEST)
    assert caught.value.retryable is True
    assert len(server.requests) == 3


def test_server_errors_are_retried_then_reported(server):
    server.queue(*[error_reply(500, "boom", **{"retry-after-ms": "10"}) for _ in range(2)])
    with pytest.raises(LLMServerError) as caught:
        provider(server, max_retries=1).complete(REQUEST)
    assert caught.value.compact() == "server_error: openai: HTTP 500: boom"
    assert caught.value.retryable is True
    assert len(server.requests) == 2


def test_500_then_success(server):
    server.queue(error_reply(503, "busy", **{"retry-after-ms": "10"}), chat_completion('{"summary": "back"}'))
    assert provider(server).complete(REQUEST).data == {"summary": "back"}


def test_slow_response_times_out(server):
    server.queue(Reply(body=chat_completion('{"summary": "late"}').body, delay_s=1.5))
    started = time.monotonic()
    with pytest.raises(LLMTimeout) as caught:
        provider(server, timeout=0.3, max_retries=0).complete(REQUEST)
    assert time.monotonic() - started < 1.4
    assert caught.value.compact() == "timeout: openai: the request timed out"


def test_json_schema_rejected_falls_back_to_json_mode(server):
    server.queue(error_reply(400, "response_format json_schema is not supported"),
                 chat_completion('{"summary": "from json mode"}'),
                 chat_completion('{"summary": "again"}'))
    llm = provider(server)
    assert llm.complete(REQUEST).data == {"summary": "from json mode"}
    fallback = server.requests[1]["body"]
    assert fallback["response_format"] == {"type": "json_object"}
    assert fallback["messages"][0]["role"] == "system" and json.dumps(SCHEMA) in fallback["messages"][0]["content"]
    llm.complete(REQUEST)  # remembered: no second json_schema attempt
    assert len(server.requests) == 3 and server.requests[2]["body"]["response_format"] == {"type": "json_object"}


def test_other_bad_request(server):
    server.queue(error_reply(400, "context too long"), error_reply(400, "context too long"))
    with pytest.raises(LLMBadRequest, match="HTTP 400: context too long") as caught:
        provider(server).complete(REQUEST)
    assert caught.value.retryable is False


def test_unreachable_server():
    llm = OpenAIProvider(api_key="k", model="m", base_url="http://127.0.0.1:9/v1", timeout=1, max_retries=0)
    with pytest.raises(LLMConnectionError, match="cannot connect") as caught:
        llm.complete(REQUEST)
    assert caught.value.retryable is True


def test_strict_compatibility():
    assert strict_compatible(SCHEMA)
    assert not strict_compatible({"type": "object", "properties": {"a": {"type": "string"}}, "required": [],
                                  "additionalProperties": False})
    assert not strict_compatible({"type": "object", "oneOf": [SCHEMA]})
