"""Replay a recorded run: the pure engine over the recorded log, without calling anything.

:func:`replay_document` walks the log of an export (tasks/timetravel/document.py). Before
each step it asks ``decide`` (tasks/engine) what to do with the steps before it, exactly as
the runner did, and compares that decision with what the run recorded there. The model
outputs and tool results are the recorded ones (they are in the log), so nothing is called:
no network, no side effects, no database. The first step where the decision differs is the
divergence, reported with both actions. Steps a person or a service wrote (the trigger,
answers, pause, resume, cancel) are inputs, not decisions: the engine must have been in a
state that accepts them (waiting for that answer, paused, ...).

Each recorded model output that was accepted is also checked again with the engine's
validators (``action_problem``, ``plan_problem``): a rule change that would now refuse it
is a divergence too.

:func:`prompt_token_diffs` (``--prompts active``, needs the database) renders each model
step's prompt again with the currently active version of its template, with the variables
and history the step recorded, and reports the tokens of both prompts per step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

from tasks.engine import actions as a
from tasks.engine import decide
from tasks.engine.context import build_messages, clip, dumps, messages_hash
from tasks.engine.log import action_problem, plan_problem
from tasks.engine.state import (
    CANCEL,
    HUMAN_RESPONSE,
    LLM,
    PAUSE,
    PLAN,
    RESUME,
    TRIGGER,
    AgentInfo,
    StepRecord,
    Subtask,
    TaskState,
)
from tasks.timetravel.document import records_of

SHOWN_CHARS = 300
STEP_KIND = {a.CallPlan: "plan", a.CallAgent: "llm", a.CallSummary: "summary", a.CallSynthesis: "synthesis",
             a.RunTool: "tool", a.AskHuman: "human_request", a.FinishSubtask: "result", a.FailSubtask: "error",
             a.Complete: "result", a.Fail: "error", a.Pause: "pause", a.Cancel: "cancel"}


@dataclass
class Divergence:
    index: int  # the step where the engine decides differently (== len(steps): after the last one)
    reason: str
    recorded: dict | None  # the step the run recorded there (None: the run ended)
    decided: dict  # what the engine decides now


@dataclass
class PromptDiff:
    index: int
    recorded_label: str
    active_label: str | None
    recorded_tokens: int
    active_tokens: int | None
    reproduced: bool  # the recorded prompt rebuilt from the export hashes to what the step sent
    error: str = ""

    @property
    def difference(self) -> int | None:
        return None if self.active_tokens is None else self.active_tokens - self.recorded_tokens


@dataclass
class ReplayReport:
    steps: int
    decisions: int  # engine decisions compared
    divergence: Divergence | None = None
    prompts: list[PromptDiff] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.divergence is None and not any(diff.error for diff in self.prompts)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "steps": self.steps, "decisions": self.decisions,
                "divergence": asdict(self.divergence) if self.divergence else None,
                "prompts": [{**asdict(diff), "difference": diff.difference} for diff in self.prompts]}


def count_tokens(text: str) -> int:
    from prompts.tokens import count_tokens as real

    return real(text)


def state_from_document(document: dict, records: list[StepRecord] | None = None) -> TaskState:
    """The engine's inputs as the export recorded them."""
    engine = document["engine"]
    agents = {item["name"]: AgentInfo(item["name"], item["description"], item["prompt_slug"],
                                      tuple(item["allowed_tools"]), item["max_steps"]) for item in engine["agents"]}
    return TaskState(query=document["task"]["query"], agents=agents, steps=list(records or []),
                     step_budget=document["task"]["step_budget"], allow_human=engine["allow_human"],
                     approval_tools=frozenset(engine["approval_tools"]), context_budget=engine["context_budget"],
                     max_subtasks=engine["max_subtasks"], count_tokens=count_tokens)


def replay_document(document: dict) -> ReplayReport:
    """Compare the engine's decisions with the recorded log (see the module docstring)."""
    records = records_of(document)
    state = state_from_document(document)
    report = ReplayReport(steps=len(records), decisions=0)
    for record in records:
        state.steps = records[: record.index]
        state.pause_requested, state.cancel_requested = record.kind == PAUSE, record.kind == CANCEL
        if record.index == 0 and record.kind == TRIGGER:
            continue
        action = decide(state)
        report.decisions += 1
        reason = disagreement(action, record) or _output_refused(state, record)
        if reason:
            report.divergence = Divergence(record.index, reason, describe_record(record), describe_action(action))
            return report
    state.steps, state.pause_requested, state.cancel_requested = records, False, False
    action = decide(state)
    if document["task"]["status"] in ("completed", "failed", "cancelled") and not isinstance(action, a.Done):
        report.divergence = Divergence(len(records), "the run ended here, but the engine would go on", None,
                                       describe_action(action))
    return report


def disagreement(action: Any, record: StepRecord) -> str | None:
    """Why ``record`` is not what ``action`` leads to, or None when they agree."""
    if record.kind == TRIGGER:
        return "a trigger step can only be the first step"
    if record.kind == HUMAN_RESPONSE:
        if isinstance(action, a.Wait):
            request = (record.input or {}).get("request")
            return None if request in (None, action.request_index) else \
                f"the answer is to step {request}, but the open question is step {action.request_index}"
        return None if isinstance(action, a.Idle) else "an answer was recorded, but no question was open"
    if record.kind == RESUME:
        return None if isinstance(action, a.Idle) else "a resume was recorded, but the task was not paused"
    kind = STEP_KIND.get(type(action))
    if kind is None:
        return f"the engine has nothing to do here ({type(action).__name__}), but the run recorded a {record.kind} step"
    if kind != record.kind:
        return f"the engine decides {type(action).__name__} (a {kind} step), the run recorded a {record.kind} step"
    subtask = getattr(action, "subtask", None)
    if (subtask.id if subtask else "") != record.subtask_id:
        return f"the engine works on subtask {subtask.id if subtask else '(none)'!r}, the run on " \
               f"{record.subtask_id or '(none)'!r}"
    return _detail_problem(action, record)


def _detail_problem(action: Any, record: StepRecord) -> str | None:
    data, out = record.input or {}, record.output if isinstance(record.output, dict) else {}
    checks: list[tuple[str, Any, Any]] = []
    match action:
        case a.CallAgent():
            if "steps_left" in data:
                checks += [("steps_left", action.steps_left, data.get("steps_left")),
                           ("final", action.final, bool(data.get("final")))]
        case a.CallSummary():
            if "fold" in data:
                checks.append(("fold", list(action.fold), data.get("fold")))
        case a.RunTool():
            checks += [("tool", action.tool, data.get("tool")),
                       ("arguments", _json(action.arguments), _json(data.get("arguments"))),
                       ("approved", action.approved, bool(data.get("approved")))]
        case a.AskHuman():
            checks += [("question", action.question, data.get("question")),
                       ("reason", action.reason, data.get("reason")),
                       ("choices", list(action.choices), list(data.get("choices") or []))]
        case a.FinishSubtask():
            checks += [("result", action.result, out.get("result")), ("rule", action.rule, out.get("rule"))]
        case a.Complete():
            checks += [("result", action.result, out.get("result")), ("rule", action.rule or None, data.get("rule"))]
        case a.FailSubtask() | a.Fail():
            checks.append(("error", action.reason, record.error))
    for name, decided, recorded in checks:
        if decided != recorded:
            return f"{name} differs"
    return None


def _output_refused(state: TaskState, record: StepRecord) -> str | None:
    """A recorded model output that was accepted, but that the engine's rules refuse now."""
    if not record.ok or not isinstance(record.output, dict):
        return None
    problem = None
    if record.kind == LLM:
        agent = state.agents.get(record.agent)
        tools = tuple(name for name in (agent.allowed_tools if agent else ()) if name != "ask_human")
        allow_human = state.allow_human and bool(agent and "ask_human" in agent.allowed_tools)
        problem = action_problem(record.output, allowed_tools=tools, allow_human=allow_human,
                                 final=bool((record.input or {}).get("final")))
    elif record.kind == PLAN:
        agents = set((record.input or {}).get("agents") or state.agents)
        problem = plan_problem(record.output, agents, state.max_subtasks)
    return f"the recorded model output would now be refused: {problem}" if problem else None


def _json(value: Any) -> str:
    return dumps(value)


def _shown(value: Any) -> Any:
    if isinstance(value, str):
        return clip(value, SHOWN_CHARS)
    if isinstance(value, Subtask):
        return value.id
    if isinstance(value, (list, tuple)):
        return [_shown(item) for item in value]
    if isinstance(value, dict):
        return {key: _shown(item) for key, item in value.items()}
    return value


def describe_action(action: Any) -> dict:
    """An engine action as plain data for a report (long texts cut)."""
    fields = {name: getattr(action, name) for name in asdict(action)} if is_dataclass(action) else {}
    return {"action": type(action).__name__, **{name: _shown(value) for name, value in fields.items()}}


def describe_record(record: StepRecord) -> dict:
    """A recorded step as plain data for a report (long texts cut)."""
    return _shown({"step": record.index, "kind": record.kind, "status": record.status, "agent": record.agent,
                   "subtask": record.subtask_id, "input": record.input, "output": record.output,
                   "error": record.error})


# --- prompts under the active versions (database) ------------------------------------------

def prompt_token_diffs(document: dict) -> list[PromptDiff]:
    """For each model step with a recorded prompt: its tokens, and those of the same call
    rendered with the template's active version now (or the render error)."""
    from prompts.errors import PromptError
    from prompts.models import PromptTemplate, PromptVersion
    from prompts.services import active_version, prompt_version_render

    records = records_of(document)
    prompts = {item["label"]: item for item in document["prompts"]}
    diffs = []
    for step in document["steps"]:
        context, label = step["context"], step["prompt_version"]
        if not isinstance(context, dict) or label not in prompts:
            continue
        item = prompts[label]
        template = PromptTemplate(slug=item["slug"], required_variables=item["required_variables"],
                                  optional_variables=item["optional_variables"])
        recorded = PromptVersion(template=template, number=item["number"], body=item["body"],
                                 temperature=item["temperature"], max_tokens=item["max_tokens"])
        variables = context.get("variables") or {}
        history = [records[i] for i in context.get("steps") or [] if i < len(records)]

        def messages(version, context=context, variables=variables, history=history,
                     kind=step["kind"]) -> list[dict]:
            text = prompt_version_render(version=version, variables=variables).text
            return build_messages(kind=context.get("kind", kind), system=text,
                                  query=document["task"]["query"], subtask=context.get("subtask"), records=history)

        try:
            before = messages(recorded)
        except PromptError as error:
            diffs.append(PromptDiff(step["index"], label, None, 0, None, False, f"recorded prompt: {error.message}"))
            continue
        diff = PromptDiff(step["index"], label, None, _tokens(before), None,
                          messages_hash(before) == step["context_hash"])
        try:
            active = active_version(slug=item["slug"])
            diff.active_label = active.label
            diff.active_tokens = _tokens(messages(active))
        except PromptError as error:
            diff.error = error.message
        diffs.append(diff)
    return diffs


def _tokens(messages: list[dict]) -> int:
    return sum(count_tokens(str(message["content"])) for message in messages)
