"""Plain data the engine works on: the step log as records, agents, and the task's inputs.

Nothing here knows about Django: the runner converts model rows into these dataclasses and
the unit tests write them by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

# Step kinds (DESIGN.md section 3); the same strings as tasks.models.StepKind.
PLAN, LLM, TOOL, SUMMARY, SYNTHESIS = "plan", "llm", "tool", "summary", "synthesis"
HUMAN_REQUEST, HUMAN_RESPONSE = "human_request", "human_response"
PAUSE, RESUME, CANCEL, ERROR, RESULT = "pause", "resume", "cancel", "error", "result"
TRIGGER = "trigger"  # step 0, written by task_create; the workflow ignores it
# A transient provider failure the task waits out; the workflow and the model ignore it.
PROVIDER_WAIT = "provider_wait"
# A failed task continues: what failed before it runs again (see log.last_retry).
RETRY = "retry"
OK, FAILED = "ok", "error"

# Steps that spend the task's step budget: model and tool calls. Control steps (pause,
# resume, human answers) do not, so pausing a task many times never fails it.
WORK_KINDS = frozenset({PLAN, LLM, TOOL, SUMMARY, SYNTHESIS})

# Human request reasons.
ASK = "ask_human"
APPROVAL = "approval"
ESCALATION = "escalation"


def estimate_tokens(text: str) -> int:
    """A rough count (4 characters a token) for tests; the runner passes the real tokenizer."""
    return len(text) // 4 + 1 if text else 0


@dataclass(frozen=True)
class StepRecord:
    """One step of the log. Records are never modified (their data included)."""

    index: int
    kind: str
    status: str = OK
    agent: str = ""
    subtask_id: str = ""
    input: dict = field(default_factory=dict)
    output: Any = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK

    @cached_property
    def planned(self) -> tuple[Subtask, ...]:
        """A plan record's subtasks, parsed from its output once (see log.subtasks_of)."""
        from tasks.engine.log import parse_subtasks

        return tuple(parse_subtasks(self.output))


@dataclass(frozen=True)
class AgentInfo:
    name: str
    description: str
    prompt_slug: str
    allowed_tools: tuple[str, ...]
    max_steps: int


@dataclass(frozen=True)
class Subtask:
    id: str
    description: str
    agent: str

    def as_dict(self) -> dict:
        return {"id": self.id, "description": self.description, "agent": self.agent}


@dataclass
class TaskState:
    """Everything ``decide`` reads. ``steps`` is the whole step log in index order."""

    query: str
    agents: dict[str, AgentInfo]
    steps: list[StepRecord] = field(default_factory=list)
    step_budget: int = 60
    allow_human: bool = True
    approval_tools: frozenset[str] = frozenset()
    pause_requested: bool = False
    cancel_requested: bool = False
    context_budget: int = 6000
    max_subtasks: int = 5
    count_tokens: Callable[[str], int] = estimate_tokens

    @property
    def next_index(self) -> int:
        return len(self.steps)
