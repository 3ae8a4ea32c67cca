"""The orchestration core: plain data in, the next action out. No Django imports here.

``decide(state)`` is a pure function of the step log (factor 12); ``build_messages`` builds
every LLM call's context (factor 3). The runner (tasks/runner.py) executes the actions.
"""

from tasks.engine import actions
from tasks.engine.context import build_messages, messages_hash, transcript
from tasks.engine.decide import MAX_CONSECUTIVE_ERRORS, decide
from tasks.engine.derive import estimate_total_steps, progress, subtask_results
from tasks.engine.log import action_problem, plan_problem, waiting_for
from tasks.engine.state import AgentInfo, StepRecord, Subtask, TaskState

__all__ = [
    "MAX_CONSECUTIVE_ERRORS", "AgentInfo", "StepRecord", "Subtask", "TaskState", "action_problem", "actions",
    "build_messages", "decide", "estimate_total_steps", "messages_hash", "plan_problem", "progress",
    "subtask_results", "transcript", "waiting_for",
]
