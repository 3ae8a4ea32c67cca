"""Validation messages for the agent's oneOf schema name the real fault."""

import json
from pathlib import Path

import pytest

from agentos.llm import InvalidModelOutput
from agentos.llm.base import parse_json_output
from agentos.llm.validation import schema_problem
from tasks.engine.log import action_problem
from tasks.engine.schema import narrow_schema

DEFAULTS = Path(__file__).resolve().parents[2] / "prompts" / "defaults"
AGENT = narrow_schema(json.loads((DEFAULTS / "agent_research.schema.json").read_text()),
                      enums={"tool": ["web_search", "calculator"]}, actions=["tool", "finish"])
PLAN = json.loads((DEFAULTS / "plan.schema.json").read_text())


@pytest.mark.parametrize(("reply", "message"), [
    ({"action": "tool", "tool": "shell", "arguments": {}, "reason": "r"},
     "action 'tool': tool 'shell' is not available; use one of web_search, calculator"),
    ({"action": "tool", "tool": "web_search", "arguments": '{"query": "x"}', "reason": "r"},
     "action 'tool': arguments must be a JSON object, got a string (send the object itself, not JSON text in a "
     "string)"),
    ({"action": "tool", "tool": "web_search", "arguments": {}, "reason": "r", "extra": 1},
     "action 'tool': unexpected key 'extra'; allowed keys: action, tool, arguments, reason"),
    ({"action": "tool", "tool": "web_search", "arguments": {}}, "action 'tool': missing 'reason'"),
    ({"action": "finish"}, "action 'finish': missing 'result'"),
    ({"action": "finish", "result": ""}, "action 'finish': result: '' should be non-empty"),
    ({"action": "ask_human", "question": "q", "choices": []}, "action 'ask_human' is not allowed here; use one of "
                                                               "tool, finish"),
    ({"tool": "web_search"}, "missing 'action'; use one of tool, finish"),
])
def test_agent_schema_faults_are_named(reply, message):
    assert schema_problem(reply, AGENT) == message


def test_two_faults_are_both_named_in_one_line():
    problem = schema_problem({"action": "tool", "tool": "web_search", "arguments": "x", "reason": "r", "why": 2},
                             AGENT)
    assert "unexpected key 'why'" in problem and "arguments must be a JSON object" in problem
    assert "\n" not in problem and len(problem) <= 240


def test_valid_replies_pass():
    assert schema_problem({"action": "finish", "result": "done"}, AGENT) is None
    assert schema_problem({"action": "tool", "tool": "calculator", "arguments": {"expression": "1+1"},
                           "reason": "r"}, AGENT) is None


def test_plain_schemas_keep_plain_messages():
    narrowed = narrow_schema(PLAN, enums={"agent": ["research"]})
    problem = schema_problem({"subtasks": [{"id": "s1", "description": "d", "agent": "poet"}]}, narrowed)
    assert problem == "subtasks[0].agent: 'poet' is not allowed; use one of research"
    assert schema_problem({"subtasks": "all"}, narrowed) == "subtasks must be an array, got a string"


def test_the_provider_error_carries_the_message():
    with pytest.raises(InvalidModelOutput) as caught:
        parse_json_output('{"action": "tool", "tool": "shell", "arguments": {}, "reason": "r"}', AGENT)
    assert caught.value.compact() == ("invalid_output: output does not match the schema: action 'tool': tool "
                                      "'shell' is not available; use one of web_search, calculator")


def test_engine_names_arguments_sent_as_a_string():
    problem = action_problem({"action": "tool", "tool": "web_search", "arguments": "{}"},
                             allowed_tools=("web_search",), allow_human=False, final=False)
    assert problem == "arguments must be a JSON object, got str (send the object itself, not JSON text in a string)"
