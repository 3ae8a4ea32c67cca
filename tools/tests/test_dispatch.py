import threading
import time

import pytest
from pydantic import BaseModel, ConfigDict

from tools import dispatch as dispatch_module
from tools import registry
from tools.dispatch import ToolContext, dispatch
from tools.models import ToolSetting

pytestmark = pytest.mark.django_db
CONTEXT = ToolContext(owner_id=None)


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


def temporary_tool(monkeypatch, name, handler, timeout_s=1.0):
    spec = registry.ToolSpec(name=name, description="test tool", parameters=registry.schema_of(NoArgs),
                             requires_approval=False, side_effects=False, timeout_s=timeout_s, handler=handler,
                             args_model=NoArgs)
    registry.all_tools()  # built-ins first, so the patch is not overwritten by their import
    monkeypatch.setitem(registry._REGISTRY, name, spec)


def test_success():
    outcome = dispatch(name="calculator", arguments={"expression": "6 * 7"}, context=CONTEXT)
    assert outcome.ok and outcome.result == {"expression": "6 * 7", "result": 42}
    assert outcome.error is None and outcome.error_code is None and outcome.duration_ms >= 0


def test_unknown_tool():
    outcome = dispatch(name="rm_rf", arguments={}, context=CONTEXT)
    assert (outcome.ok, outcome.error_code, outcome.error) == (False, "unknown_tool", "unknown tool 'rm_rf'")


def test_disabled_tool():
    ToolSetting.objects.create(name="calculator", enabled=False)
    outcome = dispatch(name="calculator", arguments={"expression": "1"}, context=CONTEXT)
    assert (outcome.ok, outcome.error_code) == (False, "disabled")
    assert "disabled" in outcome.error


@pytest.mark.parametrize(("arguments", "fragment"), [
    ({}, "'expression' is a required property"),
    ({"expression": 5}, "at 'expression': 5 is not of type 'string'"),
    ({"expression": "1", "extra": 1}, "Additional properties are not allowed"),
    ({"expression": ""}, "should be non-empty"),
])
def test_invalid_arguments(arguments, fragment):
    outcome = dispatch(name="calculator", arguments=arguments, context=CONTEXT)
    assert (outcome.ok, outcome.error_code) == (False, "invalid_arguments")
    assert fragment in outcome.error and outcome.error.startswith("invalid arguments for calculator")


@pytest.mark.parametrize(("schema", "arguments", "fragment"), [
    ({"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}}, {"x": 1},
     "$ref '#/$defs/missing' points nowhere"),
    ({"type": "object", "properties": {"x": {"$ref": "#missing"}}}, {"x": 1}, "$ref '#missing' points nowhere"),
    ({"type": "object", "$ref": "#"}, {}, "its references loop"),
])
def test_a_schema_whose_references_cannot_be_followed_is_a_refusal(monkeypatch, schema, arguments, fragment):
    """Valid JSON Schema that the validator cannot follow (a tool row of an MCP server stored
    before its schema was checked for this): the dispatcher answers, it does not raise."""
    ran = []
    spec = registry.ToolSpec(name="odd_schema", description="test tool", parameters=schema, requires_approval=False,
                             side_effects=False, timeout_s=1.0, handler=lambda arguments, context: ran.append(1))
    registry.all_tools()
    monkeypatch.setitem(registry._REGISTRY, "odd_schema", spec)
    outcome = dispatch(name="odd_schema", arguments=arguments, context=CONTEXT)
    assert (outcome.ok, outcome.error_code) == (False, "invalid_arguments")
    assert outcome.error.startswith("invalid arguments for odd_schema: its input schema cannot be used")
    assert fragment in outcome.error and not ran


def test_arguments_not_an_object():
    outcome = dispatch(name="calculator", arguments=["1 + 1"], context=CONTEXT)
    assert outcome.error_code == "invalid_arguments"


def test_tool_error_is_compact():
    outcome = dispatch(name="calculator", arguments={"expression": "1 / 0"}, context=CONTEXT)
    assert (outcome.ok, outcome.error_code, outcome.error) == (False, "tool_error", "calculator: division by zero")


def test_handler_exception_becomes_one_line(monkeypatch):
    def broken(arguments, context):
        raise RuntimeError("disk\nexploded " + "x" * 1000)

    temporary_tool(monkeypatch, "broken", broken)
    outcome = dispatch(name="broken", arguments={}, context=CONTEXT)
    assert (outcome.ok, outcome.error_code) == (False, "tool_error")
    assert outcome.error.startswith("broken failed: RuntimeError: disk exploded")
    assert "\n" not in outcome.error and len(outcome.error) <= 300
    assert "Traceback" not in outcome.error


def test_timeout(monkeypatch):
    def slow(arguments, context):
        time.sleep(1.0)
        return "late"

    temporary_tool(monkeypatch, "slow", slow, timeout_s=0.2)
    started = time.monotonic()
    outcome = dispatch(name="slow", arguments={}, context=CONTEXT)
    assert time.monotonic() - started < 0.9
    assert (outcome.ok, outcome.error_code, outcome.error) == (False, "timeout", "slow did not finish within 0.2 s")


def test_ask_human_is_not_dispatched():
    outcome = dispatch(name="ask_human", arguments={"question": "ok?"}, context=CONTEXT)
    assert (outcome.ok, outcome.error_code) == (False, "needs_task")
    assert "only runs inside a task" in outcome.error


def test_current_time():
    outcome = dispatch(name="current_time", arguments={"timezone": "Europe/Madrid"}, context=CONTEXT)
    assert outcome.ok and outcome.result["timezone"] == "Europe/Madrid"
    bad = dispatch(name="current_time", arguments={"timezone": "Mars/Olympus"}, context=CONTEXT)
    assert (bad.error_code, bad.error) == ("tool_error", "current_time: unknown time zone 'Mars/Olympus'")


def test_as_dict():
    ok = dispatch(name="calculator", arguments={"expression": "2+2"}, context=CONTEXT).as_dict()
    assert set(ok) == {"ok", "result", "duration_ms"}
    failed = dispatch(name="nope", arguments={}, context=CONTEXT).as_dict()
    assert set(failed) == {"ok", "error", "error_code", "duration_ms"}


@pytest.mark.django_db
def test_known_enabled_skips_the_settings_query():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as checked:
        assert dispatch(name="calculator", arguments={"expression": "2+3"}, context=CONTEXT).ok
    with CaptureQueriesContext(connection) as known:
        outcome = dispatch(name="calculator", arguments={"expression": "2+3"}, context=CONTEXT, known_enabled=True)
    assert outcome.ok and outcome.result["result"] == 5
    assert len(checked) == 1 and len(known) == 0


@pytest.mark.parametrize(("error", "fragment"), [
    (registry.ToolError("no such thing"), "threaded_failing: no such thing"),
    (TimeoutError("its own"), "threaded_failing failed: TimeoutError: its own"),
    (ValueError("bad"), "threaded_failing failed: ValueError: bad"),
])
def test_a_threaded_tools_failures_are_outcomes(monkeypatch, error, fragment):
    def handler(arguments, context):
        raise error

    temporary_tool(monkeypatch, "threaded_failing", handler)
    outcome = dispatch(name="threaded_failing", arguments={}, context=CONTEXT)
    assert not outcome.ok and outcome.error_code == "tool_error" and fragment in outcome.error


def test_an_io_tool_runs_on_a_pool_thread_not_the_callers(monkeypatch):
    threads = []
    temporary_tool(monkeypatch, "where", lambda arguments, context: threads.append(threading.current_thread())
                   or {"ok": True})
    assert dispatch(name="where", arguments={}, context=CONTEXT).ok
    assert threads and threads[0] is not threading.current_thread()


def test_calculator_and_data_analysis_are_pure():
    assert registry.get_tool("calculator").pure and registry.get_tool("data_analysis").pure
    assert not registry.get_tool("http_get").pure and not registry.get_tool("memory_store").pure


def test_an_oversized_list_is_refused_before_the_items_are_looked_at():
    numbers = ["not a number"] * 1_000_000  # every item wrong: only the length may be looked at
    started = time.monotonic()
    outcome = dispatch(name="data_analysis", arguments={"numbers": numbers}, context=CONTEXT)
    elapsed = time.monotonic() - started
    assert (outcome.ok, outcome.error_code) == (False, "invalid_arguments")
    assert "1000000 items is more than the 100000 allowed" in outcome.error
    assert elapsed < 0.5, elapsed


def test_the_largest_allowed_list_is_validated_quickly():
    numbers = [float(i) for i in range(100_000)]
    spec = registry.get_tool("data_analysis")
    started = time.monotonic()
    assert dispatch_module.argument_problem(spec, {"numbers": numbers}) is None
    assert time.monotonic() - started < 0.3
