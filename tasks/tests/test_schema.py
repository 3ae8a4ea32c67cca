"""Narrowing the default prompt schemas: enums for agents and tools, allowed actions."""

import json
from pathlib import Path

from jsonschema import Draft202012Validator

from tasks.engine.schema import narrow_schema

DEFAULTS = Path(__file__).resolve().parents[2] / "prompts" / "defaults"


def _schema(name: str) -> dict:
    return json.loads((DEFAULTS / f"{name}.schema.json").read_text())


def _valid(schema: dict, data: dict) -> bool:
    return not list(Draft202012Validator(schema).iter_errors(data))


def test_agent_schema_gets_a_tool_enum_and_allowed_actions():
    original = _schema("agent_research")
    schema = narrow_schema(original, enums={"tool": ["web_search"]}, actions=["tool", "finish"])
    call = {"action": "tool", "tool": "web_search", "arguments": {}, "reason": "r"}
    assert _valid(schema, call)
    assert not _valid(schema, call | {"tool": "http_get"})
    assert not _valid(schema, {"action": "ask_human", "question": "?", "choices": []})
    assert _valid(schema, {"action": "finish", "result": "done"})
    assert _valid(original, {"action": "ask_human", "question": "?", "choices": []})  # the original is untouched
    final = narrow_schema(original, enums={"tool": ["web_search"]}, actions=["finish"])
    assert not _valid(final, call) and _valid(final, {"action": "finish", "result": "x"})


def test_plan_schema_gets_an_agent_enum_and_a_subtask_cap():
    schema = narrow_schema(_schema("plan"), enums={"agent": ["research"]}, max_items={"subtasks": 1})
    one = {"id": "s1", "description": "d", "agent": "research"}
    assert _valid(schema, {"subtasks": [one]})
    assert not _valid(schema, {"subtasks": [one | {"agent": "analysis"}]})
    assert not _valid(schema, {"subtasks": [one, one | {"id": "s2"}]})


def test_a_slice_narrows_each_schema_once_per_narrowing_and_leaves_the_schema_alone():
    import copy

    from tasks.execution import Run, _narrowed

    schema = {"type": "object", "properties": {"action": {"type": "string", "enum": ["tool", "ask_human", "finish"]},
                                               "tool": {"type": "string"}}}
    original = copy.deepcopy(schema)
    run = Run(task=None, state=None, tools={})
    first = _narrowed(run, schema, {"enums": {"tool": ["calculator"]}, "actions": ["tool", "finish"]})
    again = _narrowed(run, schema, {"enums": {"tool": ["calculator"]}, "actions": ["tool", "finish"]})
    last = _narrowed(run, schema, {"enums": {"tool": ["calculator"]}, "actions": ["finish"]})
    assert again is first
    assert first == narrow_schema(schema, enums={"tool": ["calculator"]}, actions=["tool", "finish"])
    assert last == narrow_schema(schema, enums={"tool": ["calculator"]}, actions=["finish"]) != first
    assert _narrowed(run, schema, None) is schema
    assert schema == original
