"""What the engine can ask the runner to do next (factor 8: the control flow is ours).

LLM calls: CallPlan, CallAgent, CallSummary, CallSynthesis. Deterministic work: RunTool.
Step-writing decisions that need no outside call: AskHuman, FinishSubtask, FailSubtask,
Complete, Fail, Pause, Cancel. Nothing to do now: Wait (a human must answer), Idle (paused),
Done (the task is finished).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.engine.state import Subtask


@dataclass(frozen=True)
class CallPlan:
    max_subtasks: int
    history: tuple[int, ...] = ()  # earlier failed plan attempts, shown to the model


@dataclass(frozen=True)
class CallAgent:
    subtask: Subtask
    steps_left: int
    final: bool  # the last LLM step the agent may take: only "finish" is allowed
    history: tuple[int, ...] = ()


@dataclass(frozen=True)
class CallSummary:
    subtask: Subtask
    fold: tuple[int, ...]  # the steps the summary replaces in later contexts


@dataclass(frozen=True)
class CallSynthesis:
    results: tuple[dict, ...]  # [{"subtask", "agent", "status", "result"}]
    history: tuple[int, ...] = ()  # the steps the results come from


@dataclass(frozen=True)
class RunTool:
    subtask: Subtask
    tool: str
    arguments: dict
    approved: bool = False  # a human approved this call (requires_approval tools)


@dataclass(frozen=True)
class AskHuman:
    subtask: Subtask
    question: str
    choices: tuple[str, ...] = ()
    reason: str = "ask_human"  # ask_human | approval | escalation
    tool_call: dict | None = None  # approval: {"tool", "arguments"}


@dataclass(frozen=True)
class FinishSubtask:
    subtask: Subtask
    result: str
    rule: str


@dataclass(frozen=True)
class FailSubtask:
    subtask: Subtask
    reason: str


@dataclass(frozen=True)
class Complete:
    result: str
    rule: str = ""


@dataclass(frozen=True)
class Fail:
    reason: str


@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Cancel:
    pass


@dataclass(frozen=True)
class Wait:
    request_index: int
    waiting_for: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Idle:
    """Paused: nothing runs until a resume step."""


@dataclass(frozen=True)
class Done:
    status: str  # completed | failed | cancelled


LLM_ACTIONS = (CallPlan, CallAgent, CallSummary, CallSynthesis)
WORK_ACTIONS = (*LLM_ACTIONS, RunTool)
