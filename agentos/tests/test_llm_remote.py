"""The shared pieces of the HTTP providers: Retry-After, backoff, truncation bound, statuses."""

import email.utils
import time

import pytest

from agentos.llm.openai_provider import OpenAIProvider
from agentos.llm.remote import (
    BACKOFF_CAP,
    MAX_TOKENS_CEILING,
    larger_max_tokens,
    retry_after_seconds,
    status_error,
    with_system_instruction,
)


def test_retry_after_forms():
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after": "1.5"}) == 1.5
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= retry_after_seconds({"retry-after": later}) <= 31
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None and retry_after_seconds(None) is None


def test_backoff_has_jitter_and_a_cap():
    provider = OpenAIProvider(api_key="k", model="m", base_url="http://127.0.0.1:9/v1")
    delays = [provider.backoff(0) for _ in range(50)]
    assert all(0.25 <= delay <= 0.5 for delay in delays) and len(set(delays)) > 1
    assert all(BACKOFF_CAP / 2 <= provider.backoff(10) <= BACKOFF_CAP for _ in range(20))


def test_truncation_retry_is_bounded():
    assert larger_max_tokens(200, 2048) == 1024
    assert larger_max_tokens(3000, 2048) == 6000
    assert larger_max_tokens(None, 2048) == 4096
    assert larger_max_tokens(MAX_TOKENS_CEILING, 2048) is None


@pytest.mark.parametrize(("status", "message", "kind", "code"), [
    (401, "bad key", "configuration", "auth_error"),
    (403, "forbidden", "configuration", "auth_error"),
    (404, "no route", "configuration", "unknown_model"),
    (400, "The model `gpt-9` does not exist", "configuration", "unknown_model"),
    (400, "Unrecognized request argument supplied: response_format", "configuration", "unsupported_parameter"),
    (400, "temperature is not supported with this model", "configuration", "unsupported_parameter"),
    (400, "maximum context length exceeded", "configuration", "bad_request"),
    (402, "no credit", "configuration", "payment_required"),
    (408, "slow", "transient", "timeout"),
    (409, "conflict", "transient", "server_error"),
    (429, "slow down", "transient", "rate_limited"),
    (500, "boom", "transient", "server_error"),
    (529, "overloaded", "transient", "server_error"),
])
def test_status_kinds(status, message, kind, code):
    error = status_error(status, message, {"retry-after": "3"}, "openai")
    assert (error.kind, error.code, error.status) == (kind, code, status)
    assert error.retry_after == (3.0 if kind == "transient" else None)


def test_schema_instruction_goes_into_the_first_system_message():
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "u"},
                {"role": "system", "content": "late"}]
    assert with_system_instruction(messages, "I") == [{"role": "system", "content": "S\n\nI"}, *messages[1:]]
    assert with_system_instruction([{"role": "user", "content": "u"}], "I") == [
        {"role": "system", "content": "I"}, {"role": "user", "content": "u"}]
