"""The anthropic provider through the real SDK and HTTP, against a loopback fake server."""

import pytest

from agentos.llm import InvalidModelOutput, LLMAuthError, LLMRequest
from agentos.llm.anthropic_provider import AnthropicProvider, split_messages
from agentos.llm.fake_server import FakeLLMServer, anthropic_message, error_reply

SCHEMA = {"type": "object", "properties": {"result": {"type": "string", "minLength": 1}},
          "required": ["result"], "additionalProperties": False}
ACTIONS = {"type": "object", "oneOf": [SCHEMA]}


@pytest.fixture
def server():
    with FakeLLMServer() as running:
        yield running


def provider(server):
    return AnthropicProvider(api_key="test-key", model="fake-claude", base_url=server.url, timeout=5, max_retries=1)


def request(schema=SCHEMA):
    return LLMRequest(messages=[{"role": "system", "content": "Answer."}, {"role": "user", "content": "q"}],
                      response_schema=schema, schema_name="synthesize")


def test_object_schema_uses_a_forced_tool(server):
    server.queue(anthropic_message(tool_input={"result": "done"}, input_tokens=20, output_tokens=4))
    result = provider(server).complete(request())
    assert result.data == {"result": "done"}
    assert (result.tokens_in, result.tokens_out, result.model) == (20, 4, "fake-claude")
    body = server.requests[0]["body"]
    assert server.requests[0]["path"] == "/v1/messages"
    assert body["tool_choice"] == {"type": "tool", "name": "respond"}
    assert body["tools"][0]["input_schema"] == SCHEMA
    assert body["system"] == "Answer." and body["messages"] == [{"role": "user", "content": "q"}]


def test_one_of_schema_is_described_and_parsed(server):
    server.queue(anthropic_message(text='{"result": "text json"}'))
    assert provider(server).complete(request(ACTIONS)).data == {"result": "text json"}
    body = server.requests[0]["body"]
    assert "tools" not in body and "JSON Schema" in body["system"]


def test_invalid_tool_input(server):
    server.queue(anthropic_message(tool_input={"result": ""}))
    with pytest.raises(InvalidModelOutput, match="should be non-empty"):
        provider(server).complete(request())


def test_auth_error(server):
    server.queue(error_reply(401, "invalid x-api-key"))
    with pytest.raises(LLMAuthError, match="HTTP 401 authentication failed: invalid x-api-key"):
        provider(server).complete(request())


def test_rate_limit_is_retried(server):
    server.queue(error_reply(429, "slow", **{"retry-after-ms": "10"}), anthropic_message(tool_input={"result": "ok"}))
    assert provider(server).complete(request()).data == {"result": "ok"}
    assert len(server.requests) == 2


def test_split_messages_alternates_roles():
    system, turns = split_messages([{"role": "system", "content": "S"}, {"role": "assistant", "content": "a"},
                                    {"role": "user", "content": "u1"}, {"role": "user", "content": "u2"}])
    assert system == "S"
    assert turns == [{"role": "user", "content": "Begin."}, {"role": "assistant", "content": "a"},
                     {"role": "user", "content": "u1\n\nu2"}]


def test_temperature_and_max_tokens_are_sent_as_the_pinned_sdk_accepts_them(server):
    """anthropic 2.14's Messages.create has no temperature argument: it goes in the body."""
    server.queue(anthropic_message(tool_input={"result": "warm"}))
    call = LLMRequest(messages=[{"role": "user", "content": "q"}], response_schema=SCHEMA, schema_name="synthesize",
                      temperature=0.7, max_tokens=321)
    assert provider(server).complete(call).data == {"result": "warm"}
    body = server.requests[0]["body"]
    assert (body["temperature"], body["max_tokens"]) == (0.7, 321)
