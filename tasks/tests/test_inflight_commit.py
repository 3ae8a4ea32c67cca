"""A step's commit stays in flight while the next LLM step renders its prompt.

The runner sends step N's fenced statement without waiting (agentos.db.prepare, then its
send()) and reads its reply before anything that depends on it: the provider call of step
N+1, any query, any tool or decision step, the sending of step N+1, the end of the slice.
These tests drive run_slice in this thread on committed data (transaction=True, so the
connection is in autocommit and the in-flight path is the one used) and change the task row
from a second connection at the moment a chosen step's statement is sent.
"""

from __future__ import annotations

import dataclasses
import time

import psycopg
import pytest
from django.db import connection

from agentos.db import InFlight
from agentos.llm import get_provider
from tasks import execution, runner
from tasks.models import Step, Task
from tasks.runner import run_slice
from tasks.services import task_create
from tasks.tests.waiting import assert_contiguous

pytestmark = pytest.mark.django_db(transaction=True)

QUERY = "Please compute 12 * 7, then compute 13 * 8."


def other_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


@pytest.fixture
def sends(monkeypatch):
    """Every statement the runner sends: (step index, whether it went in flight)."""
    seen: list[tuple[int, bool]] = []
    hooks: dict[int, callable] = {}
    original = runner.prepare

    def spy(sql, params, db=None):
        step_index = spy.next_index
        statement = original(sql, params, db)
        send = statement.send

        def send_now(replace=None):
            if step_index in hooks:
                hooks[step_index]()
            inflight = send(replace)
            seen.append((step_index, isinstance(inflight, InFlight)))
            return inflight

        statement.send = send_now
        return statement

    spy.next_index = None
    original_commit = runner._Slice._commit

    def commit(self, action, draft, *, release):
        spy.next_index = self.state.next_index
        return original_commit(self, action, draft, release=release)

    monkeypatch.setattr(runner, "prepare", spy)
    monkeypatch.setattr(runner._Slice, "_commit", commit)
    return seen, hooks


@pytest.fixture
def provider_calls(monkeypatch):
    provider = get_provider()
    calls = []
    original = provider.complete

    def counted(request):
        calls.append(request.schema_name)
        return original(request)

    monkeypatch.setattr(provider, "complete", counted)
    return calls


def run_to_end(task) -> list:
    outcomes = []
    for _ in range(50):
        outcomes.append(run_slice(task.id, worker_id="inflight-test"))
        task.refresh_from_db()
        if task.status not in ("queued", "running"):
            break
    return outcomes


def test_steps_commit_in_flight_and_every_step_is_written_once(agents_defaults, user, sends, provider_calls):
    seen, _hooks = sends
    task = task_create(owner=user, query=QUERY)
    run_to_end(task)
    assert task.status == "completed", task.error
    steps = assert_contiguous(task)
    # Every runner step was sent in flight (autocommit), each index once, in order.
    assert [index for index, _ in seen] == [s.index for s in steps[1:]]
    assert all(inflight for _, inflight in seen)
    # One provider call per committed LLM step: nothing was called twice.
    assert len(provider_calls) == sum(s.kind in ("plan", "llm", "summary", "synthesis") for s in steps)
    # The connection is usable afterwards (no reply left unread).
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def llm_before_llm(user) -> int:
    """Index of an LLM step followed by another LLM step (which overlaps its commit), from a
    reference run of the same query (the offline provider is deterministic)."""
    task = task_create(owner=user, query=QUERY)
    run_to_end(task)
    kinds = [s.kind for s in Step.objects.filter(task=task).order_by("index")]
    return next(i for i in range(1, len(kinds) - 1) if kinds[i] == "llm" and kinds[i + 1] == "llm")


def test_pause_seen_in_the_reply_stops_the_next_llm_step_before_its_call(agents_defaults, user, sends,
                                                                         provider_calls):
    index = llm_before_llm(user)
    provider_calls.clear()
    _seen, hooks = sends
    task = task_create(owner=user, query=QUERY)
    with other_connection() as other:
        # Asked while step `index` is being sent: its reply carries pause_requested.
        hooks[index] = lambda: other.execute("UPDATE tasks_task SET pause_requested = true WHERE id = %s", [task.id])
        outcomes = run_to_end(task)
    assert task.status == "paused"
    assert outcomes[-1].outcome == "paused"
    steps = assert_contiguous(task)
    assert [s.kind for s in steps][index:] == ["llm", "pause"]
    # The next LLM step was decided before the reply but never reached its provider call.
    assert len(provider_calls) == sum(s.kind in ("plan", "llm", "summary", "synthesis") for s in steps)


def test_lease_lost_in_flight_ends_the_slice_with_nothing_more_written(agents_defaults, user, sends,
                                                                        provider_calls):
    index = llm_before_llm(user)
    _seen, hooks = sends
    task = task_create(owner=user, query=QUERY)
    with other_connection() as other:
        # Another worker takes the lease just before step `index` is sent: its fenced
        # statement matches no row, and the step after it must not be written either.
        hooks[index] = lambda: other.execute("UPDATE tasks_task SET lease_owner = 'someone-else' WHERE id = %s",
                                             [task.id])
        result = run_slice(task.id, worker_id="inflight-test")
    assert result.outcome == "lost_lease"
    assert result.steps == index - 1  # confirmed commits of this slice: steps 1 .. index-1
    assert Step.objects.filter(task=task).count() == index
    assert Task.objects.get(pk=task.pk).lease_owner == "someone-else"
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_an_error_while_a_commit_is_in_flight_still_reads_its_reply(agents_defaults, user, sends, monkeypatch):
    index = llm_before_llm(user)
    seen, _hooks = sends
    seen.clear()
    task = task_create(owner=user, query=QUERY)
    original = execution.build_messages

    def failing(**kwargs):
        # Building the messages of the step after `index`, while `index` is in flight.
        if seen and seen[-1][0] == index:
            raise RuntimeError("broken while step N is in flight")
        return original(**kwargs)

    monkeypatch.setattr(execution, "build_messages", failing)
    with pytest.raises(RuntimeError, match="in flight"):
        run_to_end(task)
    assert seen[-1] == (index, True)
    # Step `index` was sent before the failure, its reply read on the way out: it is committed
    # and the connection carries no unread reply.
    assert Step.objects.filter(task=task).count() == index + 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_a_slice_reads_the_active_prompts_once_and_renders_without_a_query(agents_defaults, user, monkeypatch):
    from prompts import services as prompt_services
    from prompts.models import PromptVersion
    from tasks.leases import lease_acquire
    from tasks.runner import _lookups_sql, _parse_lookups

    probe = task_create(owner=user, query=QUERY)
    lookups = _parse_lookups(lease_acquire(probe.id, "lookups-probe", also=_lookups_sql()).also)
    active = dict(PromptVersion.objects.filter(is_active=True).values_list("template__slug", "pk"))
    assert {slug: ident for slug, (ident, _stamp) in lookups.active_prompts.items()} == active
    # The slice renders every prompt from the versions it read at its start.
    calls = []
    monkeypatch.setattr(execution, "active_version",
                        lambda **kwargs: calls.append(kwargs) or prompt_services.active_version(**kwargs))
    task = task_create(owner=user, query=QUERY)
    run_to_end(task)
    assert task.status == "completed", task.error
    assert calls == []


def test_a_slice_starts_with_the_lease_statement_and_the_step_log(agents_defaults, user, settings):
    from django.test.utils import CaptureQueriesContext

    settings.TASK_SLICE_STEPS = 1
    task = task_create(owner=user, query=QUERY)
    run_slice(task.id, worker_id="inflight-test")  # the first slice: no step log to read yet
    task.refresh_from_db()
    assert task.status == "running" and task.step_count == 2
    with CaptureQueriesContext(connection) as queries:
        result = run_slice(task.id, worker_id="inflight-test")
    assert result.steps == 1
    sqls = [q["sql"] for q in queries]
    # The lease statement also reads the agents, disabled tools and active prompt versions;
    # then the step log; then the step's own statement (its last in the slice). In between,
    # at most the content of a prompt version this process has not read before.
    assert sqls[0].startswith("WITH leased AS (UPDATE") and "json_object_agg" in sqls[0], sqls[:3]
    assert 'FROM "tasks_step"' in sqls[1], sqls[:3]
    assert sqls[-1].startswith("WITH lease AS (UPDATE"), sqls[-1][:80]
    assert all('FROM "prompts_promptversion"' in sql for sql in sqls[2:-1]), sqls


def test_side_effect_tools_start_only_after_the_previous_commit_is_confirmed(agents_defaults, user, monkeypatch):
    from tasks.engine import actions as a

    seen = []
    original = runner._Slice._execute

    def execute(self, action):
        if isinstance(action, a.RunTool):
            seen.append((action.tool, self.pending is None))
        return original(self, action)

    monkeypatch.setattr(runner._Slice, "_execute", execute)
    task = task_create(owner=user, query="Research the history of PostgreSQL, compute the average of 12, 15 and 30, "
                                         "and save a summary of both")
    run_to_end(task)
    assert task.status == "completed", task.error
    tools = {tool for tool, _ in seen}
    assert {"memory_store"} <= tools and len(tools) > 1, seen
    # A side effect never runs before the step that decided it is durable ...
    assert all(confirmed for tool, confirmed in seen if tool == "memory_store")
    # ... while a tool without side effects runs as the previous commit travels.
    assert any(not confirmed for tool, confirmed in seen if tool != "memory_store")


def test_the_previous_step_is_published_while_an_llm_call_runs(agents_defaults, user, monkeypatch):
    # A watcher must not wait for the next (possibly long) model call to see a committed step.
    from tasks import live

    published: list[int] = []
    # The runner sends the events it prepared (live.prepare, then live.send).
    monkeypatch.setattr(live, "send", lambda outgoing: published.append(outgoing.event["seq"])
                        if outgoing.event["type"] == "step" else None)
    provider = get_provider()
    original = provider.complete
    seen_by_call: list[list[int]] = []

    def slow(request):
        time.sleep(0.05)  # the model at work; the runner reads the previous reply meanwhile
        seen_by_call.append(list(published))
        return original(request)

    monkeypatch.setattr(provider, "complete", slow)
    task = task_create(owner=user, query=QUERY)
    run_to_end(task)
    assert task.status == "completed", task.error
    llm_steps = [s.index for s in assert_contiguous(task) if s.kind in ("plan", "llm", "summary", "synthesis")]
    assert len(seen_by_call) == len(llm_steps)
    for index, seen in zip(llm_steps[1:], seen_by_call[1:], strict=True):  # (step 0 is the service's)
        assert index - 1 in seen, f"step {index - 1} was not published during the call of step {index}"


def llm_before_tool(user) -> int:
    """Index of an LLM step followed by a tool step without side effects (the calculator)."""
    task = task_create(owner=user, query=QUERY)
    run_to_end(task)
    kinds = [s.kind for s in Step.objects.filter(task=task).order_by("index")]
    return next(i for i in range(1, len(kinds) - 1) if kinds[i] == "llm" and kinds[i + 1] == "tool")


def test_a_tool_that_returns_first_has_its_step_built_while_the_previous_commit_travels(agents_defaults, user,
                                                                                        monkeypatch):
    import threading

    from tasks import live

    index = llm_before_tool(user)
    events: list[tuple] = []
    original = runner.prepare

    def spy(sql, params, db=None):
        step_index = spy.current.state.next_index
        statement = original(sql, params, db)
        events.append(("built", step_index, time.time()))
        send = statement.send

        def send_now(replace=None):
            if step_index == index:
                hold_the_task_row()
            events.append(("sent", step_index, time.time()))
            return send(replace)

        statement.send = send_now
        return statement

    original_commit = runner._Slice._commit

    def commit(self, action, draft, *, release):
        spy.current = self
        return original_commit(self, action, draft, release=release)

    monkeypatch.setattr(runner, "prepare", spy)
    monkeypatch.setattr(runner._Slice, "_commit", commit)
    monkeypatch.setattr(live, "send", lambda outgoing: events.append(("published", outgoing.event["seq"], time.time()))
                        if outgoing.event["type"] == "step" else None)
    released = {}
    other = other_connection()
    other.autocommit = False

    def hold_the_task_row():
        # Step `index` waits for this lock, so its reply comes 0.3 s later.
        other.execute("SELECT 1 FROM tasks_task WHERE id = %s FOR UPDATE", [task.id])

        def release():
            released["at"] = time.time()
            other.commit()

        threading.Timer(0.3, release).start()

    task = task_create(owner=user, query=QUERY)
    try:
        run_to_end(task)
    finally:
        other.close()
    assert task.status == "completed", task.error
    steps = assert_contiguous(task)
    assert steps[index + 1].kind == "tool"
    order = [(what, seq) for what, seq, _at in events if seq in (index, index + 1)]
    # The tool step was built before step `index` was confirmed, and sent only after.
    assert order == [("built", index), ("sent", index), ("built", index + 1), ("published", index),
                     ("sent", index + 1), ("published", index + 1)], order
    built_at = next(at for what, seq, at in events if (what, seq) == ("built", index + 1))
    assert built_at < released["at"]
    # A step is stamped when it is sent, after the previous reply.
    assert steps[index + 1].created_at.timestamp() >= released["at"]


def test_the_previous_step_is_published_while_a_slow_tool_runs(agents_defaults, user, monkeypatch):
    from tasks import live
    from tools import dispatch, registry

    index = llm_before_tool(user)
    published: list[int] = []
    # The runner sends the events it prepared (live.prepare, then live.send).
    monkeypatch.setattr(live, "send", lambda outgoing: published.append(outgoing.event["seq"])
                        if outgoing.event["type"] == "step" else None)
    original = dispatch._run
    seen_by_tool: list[list[int]] = []

    def slow(spec, arguments, context):
        time.sleep(0.05)  # the tool at work; the runner reads the previous reply meanwhile
        seen_by_tool.append(list(published))
        return original(spec, arguments, context)

    monkeypatch.setattr(dispatch, "_run", slow)
    # The calculator runs inline (in the runner's thread); a tool on a pool thread here.
    calculator = registry.get_tool("calculator")
    monkeypatch.setitem(registry._REGISTRY, "calculator", dataclasses.replace(calculator, inline=False))
    task = task_create(owner=user, query=QUERY)
    run_to_end(task)
    assert task.status == "completed", task.error
    tool_steps = [s.index for s in assert_contiguous(task) if s.kind == "tool"]
    assert index + 1 in tool_steps and len(seen_by_tool) == len(tool_steps)
    for step_index, seen in zip(tool_steps, seen_by_tool, strict=True):
        assert step_index - 1 in seen, f"step {step_index - 1} was not published while tool step {step_index} ran"
