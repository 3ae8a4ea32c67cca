import pytest
from jsonschema import Draft202012Validator

from tools.defaults import load_defaults
from tools.models import ToolSetting
from tools.registry import UnknownTool, all_tools, enabled_tools, get_tool

# Every tool the registry must list; a new built-in is added here (the counts below follow).
BUILTINS = {"calculator", "data_analysis", "memory_search", "memory_store", "web_search", "http_get",
            "ask_human", "current_time"}


def test_every_builtin_is_registered():
    assert {spec.name for spec in all_tools()} == BUILTINS


@pytest.mark.parametrize("spec", all_tools(), ids=lambda spec: spec.name)
def test_every_schema_passes_the_meta_schema(spec):
    Draft202012Validator.check_schema(spec.parameters)
    assert spec.parameters["type"] == "object"
    assert spec.parameters["additionalProperties"] is False
    assert spec.description and spec.timeout_s > 0


def test_flags():
    assert get_tool("memory_store").side_effects is True
    assert get_tool("calculator").side_effects is False
    assert get_tool("ask_human").waits_for_human is True


def test_unknown_tool_raises():
    with pytest.raises(UnknownTool, match="unknown tool 'nope'"):
        get_tool("nope")


@pytest.mark.django_db
def test_disabled_tool_is_not_enabled():
    ToolSetting.objects.create(name="http_get", enabled=False)
    names = {spec.name for spec in enabled_tools()}
    assert "http_get" not in names
    assert names == BUILTINS - {"http_get"}


@pytest.mark.django_db
def test_load_defaults_adds_missing_rows_and_keeps_choices():
    ToolSetting.objects.create(name="calculator", enabled=False)
    summary = load_defaults()
    count = len(BUILTINS)
    assert summary == f"{count} tools ({count - 1} new, 1 disabled)"
    assert ToolSetting.objects.count() == count
    assert ToolSetting.objects.get(name="calculator").enabled is False
    assert load_defaults() == f"{count} tools (0 new, 1 disabled)"
