"""Pure tools run in tool processes: killed at their timeout or memory cap, and replaced.

Real processes throughout: the pool's children are separate interpreters, so a test can
see their pids change when one is killed, and a runaway tool really runs.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
import time

import pytest

from tools import registry, sandbox
from tools.dispatch import ToolContext, dispatch

CONTEXT = ToolContext(owner_id=None)


@pytest.fixture
def hostile():
    """The misbehaving pure tools of tools/tests/hostile_tools.py, registered for one test."""
    registry.all_tools()
    saved = dict(registry._REGISTRY)
    importlib.import_module("tools.tests.hostile_tools").register_tools(timeout_s=1.5)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


def call(name: str, **arguments) -> tuple:
    started = time.monotonic()
    outcome = dispatch(name=name, arguments=arguments, context=CONTEXT, known_enabled=True)
    return outcome, time.monotonic() - started


def warm_pids(count: int | None = None) -> list[int]:
    """The pool's pids once all its processes are up (a kill is replaced in the background)."""
    pool = sandbox.get_pool()
    pool.start()
    deadline = time.monotonic() + 30
    while len(pool.pids()) < (count or pool.size) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pool.pids()


def assert_pool_serves():
    outcome, _ = call("calculator", expression="6 * 7")
    assert outcome.ok and outcome.result["result"] == 42, outcome


@pytest.mark.parametrize("tool", ["spin", "spin_in_c"])
def test_a_tool_that_never_ends_is_killed_at_its_timeout_and_replaced(hostile, tool):
    before = warm_pids()
    outcome, elapsed = call(tool)
    assert (outcome.ok, outcome.error_code) == (False, "timeout")
    assert outcome.error == f"{tool} did not finish within 1.5 s"
    assert 1.4 < elapsed < 3.0, elapsed
    after = warm_pids()
    assert len(set(before) - set(after)) == 1, (before, after)  # exactly one was killed...
    assert len(after) == len(before)  # ...and replaced
    assert_pool_serves()


def test_a_tool_that_allocates_without_bound_stops_at_the_memory_cap(hostile):
    # A long timeout: the cap (256 MB of address space), not the clock, must end it.
    registry._REGISTRY["hog"] = dataclasses.replace(registry._REGISTRY["hog"], timeout_s=20.0)
    before = warm_pids()
    outcome, elapsed = call("hog")
    assert (outcome.ok, outcome.error_code) == (False, "memory_limit")
    assert outcome.error == "hog needed more memory than its limit allows"
    assert elapsed < 10, elapsed
    assert len(set(before) - set(warm_pids())) == 1  # the process is replaced, not reused
    assert_pool_serves()


def test_a_tool_process_that_dies_is_an_outcome_and_is_replaced(hostile):
    outcome, _ = call("crash")
    assert (outcome.ok, outcome.error_code) == (False, "tool_error")
    assert "stopped during the call" in outcome.error
    assert_pool_serves()


def test_the_tool_process_has_no_django_and_no_secrets(hostile):
    outcome, _ = call("probe")
    assert outcome.ok, outcome
    assert outcome.result["django_loaded"] is False
    assert set(outcome.result["environment"]) <= {"PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUTF8",
                                                  "LC_CTYPE"}  # LC_CTYPE: the interpreter's C-locale coercion
    assert outcome.result["pid"] in sandbox.get_pool().pids()


def test_the_cpu_limit_stops_a_runaway_tool_even_without_the_parents_kill():
    pool = sandbox.ProcessPool(size=1, memory_mb=256, preload=["tools.tests.hostile_tools"])
    try:
        started = time.monotonic()
        with pytest.raises(sandbox.SandboxCrashed):
            # The parent would wait 30 s; the kernel stops the child after ~1-2 s of CPU.
            pool.run(handler="tools.tests.hostile_tools:spin", model=None, arguments={}, timeout=30,
                     cpu_seconds=1)
        assert time.monotonic() - started < 10
    finally:
        pool.close()


def test_the_callers_thread_is_free_while_a_tool_spins(hostile):
    """The caller waits on a pipe: another thread of this process keeps its full speed."""
    warm_pids()
    done = threading.Event()
    thread = threading.Thread(target=lambda: (call("spin_in_c"), done.set()))
    thread.start()
    time.sleep(0.2)  # the tool is running
    started = time.monotonic()
    total = sum(range(2_000_000))
    busy = time.monotonic() - started
    thread.join(10)
    assert done.is_set() and total
    assert busy < 1.0, f"this thread was slowed to {busy:.2f}s while the tool ran"


@pytest.mark.parametrize("expression", [
    "round(1, -10**7)", "10**10**10", "9**9**9", "1<<10**9", "2**1000*2**1000*2**1000*2**1000",
    "99999999999999999999**50 * 99999999999999999999**50", "((((((((((9**999)**9)**9)**9)**9)**9)))))",
    "max(" + ", ".join(["9**999"] * 40) + ") * 9**999",
])
def test_calculator_refuses_huge_work_at_once(expression):
    outcome, elapsed = call("calculator", expression=expression)
    assert (outcome.ok, outcome.error_code) == (False, "tool_error"), outcome
    assert elapsed < 0.5, (expression, elapsed)
