"""Carrying out the engine's actions, outside any database transaction.

``execute(run, action)`` returns the step to commit, an unsaved ``tasks.models.Step`` (the
step store writes it); nothing here writes a step. Nothing escapes it either: whatever an
executor raises becomes a step with status ``error`` and a typed code, so a task never
stops without a visible reason.
LLM calls go through ``agentos.llm.get_provider().complete`` with the prompt's schema
narrowed for the call; tools through ``tools.dispatch.dispatch`` with the idempotency key
``<task_id>:<index>`` (an uncommitted step is redone with the same index, hence the same key).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from agentos.llm import InvalidModelOutput, LLMError, LLMRequest, get_provider
from observability.hooks import model_call
from prompts.errors import PromptError
from prompts.services import (
    RenderedPrompt,
    prompt_version_for_task,
    prompt_version_for_task_cached,
    prompt_version_render,
    running_rollouts,
)
from tasks import outage
from tasks.context import canonical
from tasks.engine import actions as a
from tasks.engine.context import build_messages, clip, messages_hash, transcript, visible_own
from tasks.engine.log import action_problem, plan_problem, records_for
from tasks.engine.schema import narrow_schema
from tasks.engine.state import AgentInfo, StepRecord, TaskState
from tasks.models import Step
from tools.dispatch import ToolContext, dispatch

logger = logging.getLogger(__name__)
MEMORY_HITS = 5
MEMORY_HIT_CHARS = 500
RAW_OUTPUT_CHARS = 1000


@dataclass
class Run:
    """What the executors need besides the action: the task and the slice's cached lookups."""

    task: Any  # tasks.models.Task
    state: TaskState
    tools: dict  # enabled tool name -> ToolSpec
    versions: dict = field(default_factory=dict)  # prompt slug -> the task's PromptVersion, for this slice
    narrowed: dict = field(default_factory=dict)  # the response schemas narrowed in this slice
    # prompt slug -> (active version id, template stamp), read when the slice started
    active_prompts: dict = field(default_factory=dict)
    # prompt slug -> (candidate version id, weight) of running rollouts: read with the slice's
    # lookups (tasks/lookups.py), or at the first LLM call when the caller did not read them
    rollouts: dict | None = None

    @property
    def index(self) -> int:
        return self.state.next_index


def prompt_render(*, slug: str, variables: dict, run: Run) -> RenderedPrompt:
    """The prompts app's rendering of the version this task uses (the active one, or a
    running rollout's candidate for the task's share, prompts.services), looked up once per
    slice: a newly activated version is used from the next slice on (a few seconds at most).
    ``run.active_prompts`` (slug -> (version id, template stamp), read at the slice's start)
    lets the version come from the process's cache of immutable versions instead of a query."""
    version = run.versions.get(slug)
    if version is None:
        known = run.active_prompts.get(slug)
        if known:
            if run.rollouts is None:
                run.rollouts = running_rollouts()
            candidate_id, weight = run.rollouts.get(slug, (None, None))
            version = prompt_version_for_task_cached(slug=slug, task_id=run.task.pk, active_id=known[0],
                                                     template_stamp=known[1], candidate_id=candidate_id,
                                                     weight=weight)
        else:
            version = prompt_version_for_task(slug=slug, task_id=run.task.pk)
        run.versions[slug] = version
    return prompt_version_render(version=version, variables=variables)


def _call_llm(run: Run, draft: Step, *, slug: str, variables: dict, records: list[StepRecord],
              subtask: dict | None, narrowing: dict | None = None) -> Step:
    started = time.monotonic()
    variables = canonical(variables)
    try:
        rendered = prompt_render(slug=slug, variables=variables, run=run)
    except PromptError as error:
        draft.status, draft.error = "error", clip(" ".join(str(error).split()), 300)
        draft.duration_ms = int((time.monotonic() - started) * 1000)
        return draft
    messages = build_messages(kind=draft.kind, system=rendered.text, query=run.state.query, subtask=subtask,
                              records=records)
    draft.prompt_label = rendered.label
    # What rebuilds the exact messages later (tasks/context.py); the version id also counts
    # the version's use when the step commits (tasks/store.py).
    draft.context = {"kind": draft.kind, "version_id": rendered.version_id, "steps": [r.index for r in records],
                     "subtask": subtask, "variables": variables}
    draft.context_hash = messages_hash(messages)
    request = LLMRequest(messages=messages, response_schema=_narrowed(run, rendered.response_schema, narrowing),
                         schema_name=slug,
                         temperature=rendered.temperature, max_tokens=rendered.max_tokens, variables=variables)
    try:
        result = model_call(get_provider(), request, draft)  # span, failure log, who served it
    except LLMError as error:
        _billed(draft, error, messages)
        draft.duration_ms = int((time.monotonic() - started) * 1000)
        if outage.handles(error):  # not the model's mistake: the task waits or pauses (tasks/outage.py)
            raise ProviderFault(draft, error) from error
        draft.status, draft.error = "error", error.compact()
        draft.output = {"error": error.as_dict()}
        if isinstance(error, InvalidModelOutput):
            draft.output["raw_output"] = clip(error.raw_text or "", RAW_OUTPUT_CHARS)
    else:
        draft.output = result.data if result.data is not None else {"text": result.text}
        _billed(draft, result, messages)
    draft.duration_ms = int((time.monotonic() - started) * 1000)
    return draft


class ProviderFault(Exception):
    """A transient or configuration error of the provider, with the step drafted for the call."""

    def __init__(self, draft: Step, error: LLMError) -> None:
        super().__init__(error.compact())
        self.draft, self.error = draft, error


def _billed(draft: Step, outcome: Any, messages: list[dict]) -> None:
    """What the call cost (a result's or an error's billed tokens, estimated or not) and, when
    the provider sent other messages than those built (a schema instruction added in JSON
    mode), exactly what it sent (``context["sent"]``, shown as the step's prompt)."""
    draft.tokens_in, draft.tokens_out = int(outcome.tokens_in or 0), int(outcome.tokens_out or 0)
    draft.tokens_estimated = bool(outcome.tokens_estimated)
    sent = outcome.messages_sent
    if sent and sent != messages and isinstance(draft.context, dict):
        draft.context["sent"] = canonical(sent)


def _narrowed(run: Run, schema: dict | None, narrowing: dict | None) -> dict | None:
    """``narrow_schema(schema, **narrowing)``, computed once per slice for each schema and
    narrowing (an agent's steps ask for the same one; a response schema is never modified)."""
    if not narrowing or not schema:
        return schema
    # The versions, and so their schemas, are held by the Run for the whole slice.
    key = (id(schema), repr(narrowing))
    narrowed = run.narrowed.get(key)
    if narrowed is None:
        narrowed = run.narrowed[key] = narrow_schema(schema, **narrowing)
    return narrowed


def _invalid(draft: Step, problem: str | None) -> Step:
    if problem and draft.status == "ok":
        draft.status, draft.error = "error", f"invalid_output: {problem}"
    return draft


def plan_agents(run: Run) -> list[AgentInfo]:
    chosen = run.task.options.get("agents") or list(run.state.agents)
    return [run.state.agents[name] for name in chosen if name in run.state.agents]


def execute_plan(run: Run, action: a.CallPlan) -> Step:
    hits = _memory_hits(run)
    agents = plan_agents(run)
    names = [agent.name for agent in agents]
    variables = {"query": run.state.query, "agents": [{"name": x.name, "description": x.description} for x in agents],
                 "memory": [{"content": hit["content"], "score": hit["score"]} for hit in hits],
                 "max_subtasks": action.max_subtasks}
    draft = Step(kind="plan", input={"memory": hits, "agents": names})
    records = [r for r in run.state.steps if r.index in set(action.history)]
    draft = _call_llm(run, draft, slug="plan", variables=variables, records=records, subtask=None,
                      narrowing={"enums": {"agent": names}, "max_items": {"subtasks": action.max_subtasks}})
    return _invalid(draft, draft.status == "ok" and plan_problem(draft.output, set(names), action.max_subtasks))


def _memory_hits(run: Run) -> list[dict]:
    """Factor 13: what the knowledge base already knows about the query, before planning."""
    try:
        from memory.services import memory_search

        hits = memory_search(query=run.state.query, workspace=run.task.workspace_id, k=MEMORY_HITS)
    except Exception:  # the plan can go ahead without memory; the failure is logged
        logger.warning("memory pre-fetch failed for task %s", run.task.id, exc_info=True)
        return []
    return [{"id": str(hit.id), "kind": hit.kind, "score": round(float(hit.score), 4),
             "content": clip(hit.content, MEMORY_HIT_CHARS)} for hit in hits]


def _agent_tools(run: Run, agent: AgentInfo) -> list:
    return [run.tools[name] for name in agent.allowed_tools if name in run.tools and name != "ask_human"]


def _tool_list(tools: list) -> list[dict]:
    """The agent's tools as its prompt shows them."""
    return [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in tools]


def human_allowed(run: Run, agent: AgentInfo) -> bool:
    return run.state.allow_human and "ask_human" in agent.allowed_tools


def execute_agent(run: Run, action: a.CallAgent) -> Step:
    agent = run.state.agents[action.subtask.agent]
    tools = _agent_tools(run, agent)
    names = [tool.name for tool in tools]
    allowed = ["finish"] if action.final else (["tool"] if names else []) + (
        ["ask_human"] if human_allowed(run, agent) else []) + ["finish"]
    variables = {"query": run.state.query, "subtask": action.subtask.description,
                 "agent": {"name": agent.name, "description": agent.description},
                 "tools": _tool_list(tools),
                 "max_steps": agent.max_steps, "steps_left": action.steps_left,
                 # The answer forms the prompt offers: exactly those the narrowed schema allows.
                 "actions": allowed}
    draft = Step(kind="llm", agent=agent.name, subtask_id=action.subtask.id,
                      input={"steps_left": action.steps_left, "final": action.final})
    by_index = {r.index: r for r in run.state.steps}
    records = [by_index[i] for i in action.history]
    draft = _call_llm(run, draft, slug=agent.prompt_slug, variables=variables, records=records,
                      subtask=action.subtask.as_dict(),
                      narrowing={"enums": {"tool": names}, "actions": allowed})
    problem = draft.status == "ok" and action_problem(draft.output, allowed_tools=tuple(names),
                                                      allow_human=human_allowed(run, agent), final=action.final)
    return _invalid(draft, problem)


def execute_summary(run: Run, action: a.CallSummary) -> Step:
    fold = set(action.fold)
    records = [r for r in visible_own(records_for(run.state.steps, action.subtask.id)) if r.index in fold]
    variables = {"query": run.state.query, "transcript": transcript(records)}
    draft = Step(kind="summary", agent=action.subtask.agent, subtask_id=action.subtask.id,
                      input={"fold": list(action.fold)})
    draft = _call_llm(run, draft, slug="summarize", variables=variables, records=records,
                      subtask=action.subtask.as_dict())
    ok = draft.status != "ok" or isinstance((draft.output or {}).get("summary"), str)
    return _invalid(draft, None if ok else "the summary must be a string")


def execute_synthesis(run: Run, action: a.CallSynthesis) -> Step:
    variables = {"query": run.state.query, "results": [dict(item) for item in action.results]}
    by_index = {r.index: r for r in run.state.steps}
    records = [by_index[i] for i in action.history if i in by_index]
    draft = Step(kind="synthesis")
    draft = _call_llm(run, draft, slug="synthesize", variables=variables, records=records, subtask=None)
    ok = draft.status != "ok" or isinstance((draft.output or {}).get("result"), str)
    return _invalid(draft, None if ok else "the result must be a string")


def execute_tool(run: Run, action: a.RunTool) -> Step:
    agent = run.state.agents.get(action.subtask.agent)
    key = f"{run.task.id}:{run.index}"
    draft = Step(kind="tool", agent=action.subtask.agent, subtask_id=action.subtask.id,
                      input={"tool": action.tool, "arguments": action.arguments, "idempotency_key": key})
    if action.approved:
        draft.input["approved"] = True
    if agent is None or action.tool not in agent.allowed_tools or action.tool not in run.tools:
        draft.status = "error"
        draft.error = f"tool {action.tool!r} is not available to the {action.subtask.agent} agent"
        return draft
    # run.tools holds the tools enabled when the slice started (a slice lasts seconds).
    outcome = dispatch(name=action.tool, arguments=action.arguments, known_enabled=True,
                       context=ToolContext(owner_id=run.task.owner_id, task_id=str(run.task.id), idempotency_key=key,
                                           workspace_id=run.task.workspace_id))
    draft.duration_ms = outcome.duration_ms
    if outcome.ok:
        draft.output = {"result": json.loads(json.dumps(outcome.result, default=str))}
    else:
        draft.status, draft.error = "error", outcome.error or "tool failed"
        draft.output = {"error_code": outcome.error_code}
    return draft


def result_memory_key(task_id) -> str:
    """The idempotency key of a completed task's result in memory (one entry per task)."""
    return f"{task_id}:result"


def task_result_remember(*, task_id) -> str | None:
    """Store a completed task's result in memory, once (key ``<task_id>:result``); the id of
    the entry, or None when the task is not completed with a result.

    The follow-up of the result step (tasks/signals.py, after the step's commit): the step
    commits without waiting for the embedding, the INSERT and the index update. Run twice,
    it finds the entry by its key and stores nothing more."""
    from memory.services import memory_add
    from tasks.models import Task

    task = Task.objects.filter(pk=task_id, status="completed").only("owner_id", "workspace_id", "query",
                                                                    "result").first()
    if task is None or not task.result:
        return None
    entry = memory_add(owner=task.owner_id, workspace=task.workspace_id, content=f"{task.query}\n\n{task.result}",
                       kind="task_result",
                       metadata={"task_id": str(task.pk)}, source_task_id=task.pk,
                       idempotency_key=result_memory_key(task.pk))
    return str(entry.pk)


def results_to_remember(*, within_seconds: int = 3600, limit: int = 500) -> list:
    """Ids of tasks completed within ``within_seconds`` with a result and no memory entry of
    it (``task_result_remember`` did not run: the worker stopped right after the commit)."""
    from datetime import timedelta

    from django.utils import timezone

    from memory.models import MemoryEntry
    from tasks.models import Task

    remembered = MemoryEntry.objects.filter(kind="task_result", source_task_id__isnull=False)
    since = timezone.now() - timedelta(seconds=within_seconds)
    recent = (Task.objects.filter(status="completed", finished_at__gte=since).exclude(result="")
              .exclude(pk__in=remembered.values("source_task_id")))
    return list(recent.values_list("pk", flat=True)[:limit])


EXECUTORS = {a.CallPlan: execute_plan, a.CallAgent: execute_agent, a.CallSummary: execute_summary,
             a.CallSynthesis: execute_synthesis, a.RunTool: execute_tool}
_KINDS = {a.CallPlan: "plan", a.CallAgent: "llm", a.CallSummary: "summary", a.CallSynthesis: "synthesis",
          a.RunTool: "tool"}


def execute(run: Run, action) -> Step:
    """The step ``action`` produces. A transient or configuration error of the model provider
    becomes a provider wait, a pause or the task's failure (tasks/outage.py); any other
    exception of the provider (``LLMError``) or of anything else (a tool, memory, a bug)
    becomes an error step of the action's kind, with
    ``internal_error: <ExceptionClass>: <first line>`` for the unexpected ones."""
    try:
        executor = EXECUTORS.get(type(action))
        return executor(run, action) if executor is not None else decision_step(run, action)
    except ProviderFault as fault:
        return outage.fault_step(steps=run.state.steps, draft=fault.draft, error=fault.error)
    except LLMError as error:
        return failed_step(run, action, error.compact())
    except Exception as error:
        logger.exception("task %s: %s failed", run.task.pk, type(action).__name__)
        line = (str(error).strip().splitlines() or [""])[0]
        return failed_step(run, action, clip(f"internal_error: {type(error).__name__}: {line}", 300))


def failed_step(run: Run, action, error: str) -> Step:
    subtask = getattr(action, "subtask", None)
    step = Step(kind=_KINDS.get(type(action), "error"), status="error", error=error,
                agent=subtask.agent if subtask else "", subtask_id=subtask.id if subtask else "")
    if isinstance(action, a.RunTool):
        key = f"{run.task.pk}:{run.index}"
        step.input = {"tool": action.tool, "arguments": action.arguments, "idempotency_key": key}
    return step


def decision_step(run: Run, action) -> Step:
    """Steps that need no outside call."""
    match action:
        case a.AskHuman():
            return Step(kind="human_request", agent=action.subtask.agent, subtask_id=action.subtask.id,
                        input={"reason": action.reason, "question": action.question,
                               "choices": list(action.choices), "tool_call": action.tool_call})
        case a.FinishSubtask():
            return Step(kind="result", agent=action.subtask.agent, subtask_id=action.subtask.id,
                        output={"result": action.result, "rule": action.rule})
        case a.FailSubtask():
            return Step(kind="error", status="error", agent=action.subtask.agent, subtask_id=action.subtask.id,
                        error=action.reason)
        case a.Complete():
            # The result reaches memory after the commit, under this key (task_result_remember).
            return Step(kind="result", output={"result": action.result},
                        input={"memory_key": result_memory_key(run.task.pk), "rule": action.rule or None})
        case a.Fail():
            return Step(kind="error", status="error", error=action.reason)
        case a.Pause():
            return Step(kind="pause")
        case a.Cancel():
            return Step(kind="cancel")
    raise TypeError(f"no executor for {action!r}")
