import dataclasses
import select
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


def test_while_running_runs_in_the_callers_thread_while_the_handler_runs(monkeypatch):
    started, release = threading.Event(), threading.Event()
    order = []

    def handler(arguments, context):
        started.set()
        release.wait(5)
        order.append("handler done")
        return {"ok": True}

    def while_running(call):
        # The handler is running in its thread (and waits for us): both run at once.
        assert started.wait(5), "the handler did not start while while_running ran"
        assert not call.done()
        order.append("while_running")
        release.set()

    temporary_tool(monkeypatch, "overlapped", handler, timeout_s=5.0)
    outcome = dispatch(name="overlapped", arguments={}, context=CONTEXT, while_running=while_running)
    assert outcome.ok and outcome.result == {"ok": True}
    assert order == ["while_running", "handler done"]


def test_an_exception_of_while_running_is_the_callers(monkeypatch):
    temporary_tool(monkeypatch, "quick", lambda arguments, context: {"ok": True})

    class Stop(Exception):
        pass

    def while_running(call):
        raise Stop

    with pytest.raises(Stop):
        dispatch(name="quick", arguments={}, context=CONTEXT, while_running=while_running)


def held_tool(monkeypatch, name) -> threading.Event:
    """A tool whose handler returns once the event it gives back is set."""
    release = threading.Event()

    def handler(arguments, context):
        release.wait(5)
        return {"ok": True}

    temporary_tool(monkeypatch, name, handler, timeout_s=5.0)
    return release


def readable(call, timeout_ms: int) -> bool:
    poller = select.poll()
    poller.register(call.fileno(), select.POLLIN)
    return bool(poller.poll(timeout_ms))


def test_the_running_call_can_be_waited_for_with_a_socket(monkeypatch):
    # The orchestrator waits for "the handler returned" and "a reply arrived" at once, by
    # polling the call's descriptor beside its database socket.
    release = held_tool(monkeypatch, "waited")
    seen = {}

    def while_running(call):
        seen["before"] = (call.done(), readable(call, 50))
        release.set()
        seen["after"] = readable(call, 5000)
        time.sleep(0.01)
        seen["done"] = call.done()

    for _ in range(2):  # the descriptor is the thread's own, reused and drained per call
        seen.clear()
        release.clear()
        outcome = dispatch(name="waited", arguments={}, context=CONTEXT, while_running=while_running)
        assert outcome.ok
        assert seen["before"] == (False, False), "readable before the handler returned"
        assert seen["after"] and seen["done"] is True


def inline_tool(monkeypatch, name, handler):
    temporary_tool(monkeypatch, name, handler)
    monkeypatch.setitem(registry._REGISTRY, name, dataclasses.replace(registry._REGISTRY[name], inline=True))


def test_an_inline_tool_runs_in_the_callers_thread(monkeypatch):
    threads = []
    inline_tool(monkeypatch, "inline_probe", lambda arguments, context: threads.append(threading.current_thread())
                or {"ok": True})
    called = []
    outcome = dispatch(name="inline_probe", arguments={}, context=CONTEXT, while_running=called.append)
    assert outcome.ok and outcome.result == {"ok": True}
    assert threads == [threading.current_thread()]
    assert called == []  # nothing runs beside it


@pytest.mark.parametrize(("error", "code", "fragment"), [
    (registry.ToolError("no such thing"), "tool_error", "inline_failing: no such thing"),
    (TimeoutError("its own"), "tool_error", "TimeoutError: its own"),
    (ValueError("bad"), "tool_error", "ValueError: bad"),
])
def test_an_inline_tools_failures_are_outcomes_like_any_tools(monkeypatch, error, code, fragment):
    def handler(arguments, context):
        raise error

    inline_tool(monkeypatch, "inline_failing", handler)
    outcome = dispatch(name="inline_failing", arguments={}, context=CONTEXT)
    assert not outcome.ok and outcome.error_code == code and fragment in outcome.error


def test_the_calculator_runs_inline():
    assert registry.get_tool("calculator").inline
    outcome = dispatch(name="calculator", arguments={"expression": "12 * 7"}, context=CONTEXT)
    assert outcome.ok and outcome.result["result"] == 84


def test_a_stale_wakeup_is_cleared_while_the_call_runs(monkeypatch):
    # An abandoned earlier call of this thread may end (and write its byte) during a later
    # call: done() says no and clears it, so a caller's poll does not spin.
    release = held_tool(monkeypatch, "stale_wakeup")
    seen = {}

    def while_running(call):
        dispatch_module._wakeups.pipe.ring()  # the stale byte
        seen["stale"] = readable(call, 0)
        seen["done"] = call.done()
        seen["after"] = readable(call, 0)
        release.set()

    assert dispatch(name="stale_wakeup", arguments={}, context=CONTEXT, while_running=while_running).ok
    assert seen == {"stale": True, "done": False, "after": False}
