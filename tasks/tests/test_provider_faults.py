"""Provider faults end to end: real tasks on a real worker, each provider through its real SDK
against the loopback fake server, one fault mode per task.

Every task's query names its mode ("... (case <mode>)"); the server finds it in each request
and plays that mode's script: faults for given calls (plan, agent or synthesis step), in
order, or a fault repeated until the test heals the mode; otherwise a normal answer (one
subtask, the agent finishes, the synthesis answers). Settings are small (short timeouts,
retry window, backoff and outage ceiling) so the whole table runs in seconds.

The table asserts what a user sees at the end: completed (the fault never reached the
model), waited then completed (provider_wait steps, never an LLM error step), paused with an
operator-facing error (then resumed once healed), or failed with the typed error (then, for
an outage that ended, retried through the API and completed).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from rest_framework.test import APIClient

from agentos.llm.fake_server import FakeLLMServer, Reply, anthropic_message, chat_completion, error_reply, html_page
from tasks.context import messages_for_step
from tasks.models import Step
from tasks.services import task_create
from tasks.tests.waiting import assert_contiguous, wait_status

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PLAN = {"subtasks": [{"id": "s1", "description": "Compute 6 times 7.", "agent": "analysis"}]}
FINISH = {"action": "finish", "result": "6 times 7 is 42."}
SYNTHESIS = {"result": "The answer is 42."}
NORMAL = {"plan": PLAN, "agent": FINISH, "synthesis": SYNTHESIS}
OUTAGE_MAX = 3.0
WORKER_ENV = {"LLM_TIMEOUT": "0.6", "LLM_MAX_RETRIES": "2", "LLM_RETRY_WINDOW_SECONDS": "0.3",
              "LLM_OUTAGE_BACKOFF_SECONDS": "0.2", "LLM_OUTAGE_MAX_SECONDS": str(OUTAGE_MAX),
              "TASK_SLICE_SECONDS": "30"}

Build = Callable[[str, dict], Reply]  # (provider, request body) -> reply


def answer(provider: str, body: dict, data: Any, **options: Any) -> Reply:
    """A normal reply carrying ``data`` in the provider's shape (a tool call where Anthropic was
    given the respond tool)."""
    if provider == "openai":
        return chat_completion(data if isinstance(data, str) else json.dumps(data), **options)
    if body.get("tools") and not isinstance(data, str):
        return anthropic_message(tool_input=data, **options)
    return anthropic_message(text=data if isinstance(data, str) else json.dumps(data), **options)


def _call(body: dict) -> str:
    system = body.get("system") or next((m.get("content") for m in body.get("messages", [])
                                         if m.get("role") == "system"), "")
    system = system if isinstance(system, str) else json.dumps(system)
    if system.startswith("You are the planner"):
        return "plan"
    return "synthesis" if system.startswith("You write the final answer") else "agent"


def truncated(p: str, b: dict) -> Reply:
    if p == "openai":
        return chat_completion('{"action": "fin', finish_reason="length")
    return anthropic_message(text='{"action": "fin', stop_reason="max_tokens")


def no_choices(p: str, b: dict) -> Reply:
    if p == "openai":
        return Reply(body={"id": "x", "object": "chat.completion", "model": "m", "choices": []})
    return Reply(body={"id": "x", "type": "message", "role": "assistant", "content": None})


def no_message(p: str, b: dict) -> Reply:
    if p == "openai":
        return Reply(body={"id": "x", "object": "chat.completion", "model": "m",
                           "choices": [{"index": 0, "finish_reason": "stop"}]})
    return Reply(body={"id": "x", "type": "message", "role": "assistant", "content": [{"type": "text"}],
                       "stop_reason": "end_turn"})


def usage(kind: str) -> Build:
    values = {"openai": {"null": {"prompt_tokens": None, "completion_tokens": None, "total_tokens": None},
                         "partial": {"prompt_tokens": 9},
                         "cached": {"prompt_tokens": 900, "completion_tokens": 20,
                                    "prompt_tokens_details": {"cached_tokens": 768}}},
              "anthropic": {"null": {"input_tokens": None, "output_tokens": None},
                            "partial": {"input_tokens": 9},
                            "cached": {"input_tokens": 132, "output_tokens": 20, "cache_read_input_tokens": 768}}}
    return lambda p, b: answer(p, b, NORMAL[_call(b)], usage=values[p][kind])


def stalled(p: str, b: dict) -> Reply:
    reply = answer(p, b, NORMAL[_call(b)])
    reply.delay_s = 1.5
    return reply


@dataclass
class Mode:
    name: str
    expect: str  # completed | waited | paused | failed
    code: str = ""  # the typed code the user sees (or that the model saw, for model errors)
    faults: list[tuple[str, Build]] = field(default_factory=list)  # (call, reply), in order
    always: Build | None = None  # repeated for every call until healed
    providers: tuple[str, ...] = ("openai", "anthropic")


MODES = [
    Mode("retry_after_short", "completed", "rate_limited",
         faults=[("plan", lambda p, b: error_reply(429, "slow down", **{"retry-after": "0.05"}))]),
    Mode("retry_after_long", "waited", "rate_limited",
         faults=[("agent", lambda p, b: error_reply(429, "slow down", **{"retry-after": "1"}))]),
    Mode("server_error_once", "completed", "server_error",
         faults=[("agent", lambda p, b: error_reply(500, "oops"))]),
    Mode("server_error_always", "failed", "server_error", always=lambda p, b: error_reply(500, "down for maintenance")),
    Mode("stall", "waited", "timeout", faults=[("agent", stalled)]),
    Mode("not_json", "completed", "invalid_output",
         faults=[("agent", lambda p, b: answer(p, b, "Sure! The answer is 42."))]),
    Mode("schema_violation_x3", "failed", "invalid_output",
         faults=[("plan", lambda p, b: answer(p, b, {"steps": ["compute"]}))] * 3),
    Mode("empty_choices", "completed", "bad_response", faults=[("agent", no_choices)]),
    Mode("empty_content", "completed", "empty_output", faults=[("agent", lambda p, b: answer(p, b, ""))]),
    Mode("html_200", "completed", "bad_response", faults=[("synthesis", lambda p, b: html_page())]),
    Mode("no_message", "completed", "bad_response", faults=[("agent", no_message)]),
    Mode("null_usage", "completed", faults=[("agent", usage("null"))]),
    Mode("partial_usage", "completed", faults=[("agent", usage("partial"))]),
    Mode("cached_usage", "completed", faults=[("agent", usage("cached"))]),
    Mode("truncated", "completed", "truncated", faults=[("agent", truncated)] * 2),
    Mode("unauthorized", "paused", "auth_error", always=lambda p, b: error_reply(401, "invalid x-api-key")),
    Mode("unknown_model", "paused", "unknown_model",
         faults=[("plan", lambda p, b: error_reply(404, "The model `fake-model` does not exist"))]),
    Mode("json_schema_400", "completed", providers=("openai",),
         faults=[("plan", lambda p, b: error_reply(400, "response_format json_schema is not supported"))]),
]
TRANSIENT = {"rate_limited", "server_error", "timeout", "bad_response"}


class FaultServer(FakeLLMServer):
    """Answers by the mode named in each request (see the module docstring)."""

    def __init__(self, provider: str) -> None:
        super().__init__()
        self.provider = provider
        self.scripts = {mode.name: deque(mode.faults) for mode in MODES}
        self.always = {mode.name: mode.always for mode in MODES if mode.always}
        self.by_mode: dict[str, list[dict]] = {mode.name: [] for mode in MODES}
        self.healed = threading.Event()

    def heal(self, name: str) -> None:
        with self._lock:
            self.always.pop(name, None)

    def _next(self, path: str, body: Any) -> Reply:
        # The case is read from the conversation, not the system prompt: that may quote other
        # tasks (the plan's memory pre-fetch finds their results).
        turns = [m for m in (body.get("messages") or []) if m.get("role") != "system"] if isinstance(body, dict) else []
        text = json.dumps(turns)
        name = next((mode.name for mode in MODES if f"(case {mode.name})" in text), None)
        call = _call(body) if isinstance(body, dict) else "agent"
        with self._lock:
            self.requests.append({"path": path, "body": body})
            if name is None:
                return error_reply(400, "no case in the request")
            self.by_mode[name].append(body)
            build = self.always.get(name)
            script = self.scripts[name]
            if build is None and script and script[0][0] == call:
                build = script.popleft()[1]
        return (build or (lambda p, b: answer(p, b, NORMAL[call])))(self.provider, body)


def worker_env(provider: str, server: FaultServer) -> dict[str, str]:
    if provider == "openai":
        return {**WORKER_ENV, "LLM_PROVIDER": "openai", "OPENAI_API_KEY": "test-key",
                "OPENAI_BASE_URL": server.url + "/v1", "LLM_MODEL": "fake-model"}
    return {**WORKER_ENV, "LLM_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "test-key",
            "ANTHROPIC_BASE_URL": server.url, "LLM_MODEL": "fake-claude"}


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def model_errors(steps: list[Step]) -> list[str]:
    return [s.error for s in steps if s.kind in ("plan", "llm", "summary", "synthesis") and s.status == "error"]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_every_fault_mode_ends_as_expected(provider, agents_defaults, user, make_worker):
    modes = [mode for mode in MODES if provider in mode.providers]
    with FaultServer(provider) as server:
        make_worker(**worker_env(provider, server))
        tasks = {mode.name: task_create(owner=user, query=f"Compute 6 times 7 (case {mode.name})")
                 for mode in modes}
        client = api(user)

        # While the outage lasts the task visibly waits, with the typed code and the next try.
        waiting = tasks["server_error_always"]
        wait_status(waiting, "waiting_provider", timeout=30)
        shown = client.get(f"/api/v1/tasks/{waiting.pk}").json()
        assert shown["provider_error"]["kind"] == "transient" and shown["provider_error"]["code"] == "server_error"
        assert shown["provider_error"]["message"].startswith("waiting for the model provider (server_error), "
                                                             "next try at ")
        assert shown["provider_error"]["next_try_at"] and shown["error"] is None

        for mode in modes:
            task = tasks[mode.name]
            final = {"completed": ("completed",), "waited": ("completed",), "paused": ("paused",),
                     "failed": ("failed",)}[mode.expect]
            wait_status(task, "completed", "failed", "paused", "cancelled", "waiting_human", timeout=60)
            steps = assert_contiguous(task)
            kinds = [s.kind for s in steps]
            assert task.status in final, (mode.name, task.status, task.error, [(s.kind, s.error) for s in steps])
            shown = client.get(f"/api/v1/tasks/{task.pk}").json()
            errors = model_errors(steps)
            visible = shown["error"] or (shown["provider_error"] or {}).get("message") or (errors or [""])[0]
            # The observed row of the fault table (shown with pytest -s).
            print(f"| {provider} | {mode.name} | {mode.expect} | {task.status}, steps: {' '.join(kinds[1:])} | "
                  f"{visible[:110]} |")
            if mode.code in TRANSIENT:  # the model never sees the provider's troubles
                assert not any(error.startswith(mode.code) for error in errors), (mode.name, errors)
            if mode.expect == "completed":
                assert shown["result"] == "The answer is 42." and shown["error"] is None
                if mode.code and mode.code not in TRANSIENT:  # a model error, in the context and counted
                    assert errors and errors[0].startswith(mode.code), (mode.name, errors)
            if mode.expect == "waited":
                waits = [s for s in steps if s.kind == "provider_wait"]
                assert waits and waits[0].error.startswith(mode.code) and not errors, (mode.name, kinds)
                assert waits[0].input["next_try_at"] and waits[0].output["error"]["kind"] == "transient"
            if mode.expect == "paused":
                pause = steps[-1]
                assert pause.kind == "pause" and pause.status == "error" and pause.error.startswith(mode.code)
                assert "human_request" not in kinds, "the end user is not asked about an operator's problem"
                assert shown["provider_error"]["kind"] == "configuration"
                assert shown["provider_error"]["code"] == mode.code and "operator" in shown["provider_error"]["message"]
                assert shown["resume_url"] == f"/api/v1/tasks/{task.pk}/resume"
            if mode.expect == "failed":
                assert mode.code in shown["error"] and shown["retry_url"], (mode.name, shown["error"])

        check_details(provider, server, tasks)

        # An operator fixes the key: resume continues the paused task.
        server.heal("unauthorized")
        assert client.post(f"/api/v1/tasks/{tasks['unauthorized'].pk}/resume").status_code == 200
        assert client.post(f"/api/v1/tasks/{tasks['unknown_model'].pk}/resume").status_code == 200
        # The outage is over: the failed task is retried through the API and completes.
        server.heal("server_error_always")
        outage = tasks["server_error_always"]
        answer_ = client.post(f"/api/v1/tasks/{outage.pk}/retry")
        assert answer_.status_code == 200 and answer_.json()["status"] == "queued"
        for name in ("unauthorized", "unknown_model", "server_error_always"):
            task = wait_status(tasks[name], "completed", "failed", "paused", timeout=30)
            assert task.status == "completed", (name, task.error)
        steps = assert_contiguous(outage)
        assert [s.kind for s in steps].count("retry") == 1 and steps[-1].kind == "result"
        assert client.post(f"/api/v1/tasks/{outage.pk}/retry").json()["error"]["code"] == "not_failed"


def check_details(provider: str, server: FaultServer, tasks: dict) -> None:
    """Tokens and prompts recorded on the failed steps, outage timing, the JSON-mode fallback."""
    steps = {name: list(Step.objects.filter(task=task).order_by("index")) for name, task in tasks.items()}
    # Billed tokens and the exact prompt on rejected calls, as on successful ones.
    rejected = next(s for s in steps["not_json"] if s.kind == "llm" and s.status == "error")
    assert rejected.tokens_in > 0 and rejected.tokens_out > 0 and messages_for_step(rejected)
    cut = next(s for s in steps["truncated"] if s.kind == "llm" and s.status == "error")
    assert cut.tokens_in > 0 and cut.tokens_out > 0
    limits = [body["max_tokens"] for body in server.by_mode["truncated"] if _call(body) == "agent"]
    assert limits[1] > limits[0], "the second try of a truncated reply gets a larger max_tokens"
    for name in ("null_usage", "partial_usage"):
        estimated = [s for s in steps[name] if s.tokens_estimated]
        assert estimated and all(s.tokens_in > 0 for s in estimated), name
    # Prompt-cache reads reach the step (priced at the cached rate by observability.cost).
    cached = next(s for s in steps["cached_usage"] if s.kind == "llm")
    assert (cached.tokens_in, cached.tokens_out, cached.tokens_cached) == (900, 20, 768)
    assert cached.provider == provider and not cached.tokens_estimated
    # The server's Retry-After is honoured.
    wait = next(s for s in steps["retry_after_long"] if s.kind == "provider_wait")
    assert wait.input["delay_s"] >= 1.0
    # The outage ceiling: the failure comes after about LLM_OUTAGE_MAX_SECONDS of waiting.
    failure = steps["server_error_always"][-1]
    assert failure.kind == "error" and "LLM_OUTAGE_MAX_SECONDS" in failure.error
    first_wait = next(s for s in steps["server_error_always"] if s.kind == "provider_wait")
    assert (failure.created_at - first_wait.created_at).total_seconds() >= OUTAGE_MAX * 0.8
    if provider == "openai":
        # JSON mode after a 400 to json_schema: the schema goes in the system message, and the
        # stored prompt is exactly what the server received.
        fallback = server.by_mode["json_schema_400"][1]
        assert fallback["response_format"] == {"type": "json_object"}
        plan = next(s for s in steps["json_schema_400"] if s.kind == "plan")
        assert messages_for_step(plan) == fallback["messages"]
        assert "JSON Schema" in fallback["messages"][0]["content"]
