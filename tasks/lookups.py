"""What a slice reads when it starts, besides the task: the enabled agents, the disabled
tools, the active prompt versions and the running prompt rollouts, read in the lease's own
statement (one round trip), and the task's state for the engine."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

from prompts.tokens import count_tokens
from tasks.context import task_records
from tasks.engine.state import AgentInfo, TaskState
from tasks.models import AgentSpec, Task
from tools.models import ToolSetting
from tools.registry import ToolSpec, all_tools


@dataclass
class SliceLookups:
    agents: dict[str, AgentInfo]  # the enabled agents, by name
    disabled_tools: set[str]  # tools an administrator disabled
    active_prompts: dict[str, tuple[int, str]]  # prompt slug -> (active version id, template stamp)
    rollouts: dict[str, tuple[int, float]]  # prompt slug -> (candidate version id, weight) of running rollouts


@lru_cache(maxsize=1)
def lookups_sql() -> str:
    """One JSON array of the enabled agents, the names of the disabled tools, the active
    prompt versions (slug -> [version id, template stamp]; their content then comes from the
    process's cache of immutable versions, prompts.services.version_cached) and the running
    rollouts (slug -> [candidate version id, weight], as prompts.services.running_rollouts).
    No parameters."""
    from prompts.models import PromptRollout, PromptTemplate, PromptVersion

    agent_table, setting_table = AgentSpec._meta.db_table, ToolSetting._meta.db_table
    version_table, template_table = PromptVersion._meta.db_table, PromptTemplate._meta.db_table
    rollout_table, running = PromptRollout._meta.db_table, PromptRollout.Status.RUNNING.value
    # Table names from the models; no values in this expression.
    return (
        "SELECT json_build_array("  # noqa: S608
        "(SELECT coalesce(json_agg(json_build_array(name, description, prompt_slug, allowed_tools, max_steps) "
        f"ORDER BY name), '[]') FROM {agent_table} WHERE enabled), "
        f"(SELECT coalesce(json_agg(name), '[]') FROM {setting_table} WHERE NOT enabled), "
        f"(SELECT coalesce(json_object_agg(t.slug, json_build_array(v.id, t.updated_at)), '{{}}') "
        f"FROM {version_table} v JOIN {template_table} t ON t.id = v.template_id WHERE v.is_active), "
        f"(SELECT coalesce(json_object_agg(t.slug, json_build_array(r.candidate_id, r.weight)), '{{}}') "
        f"FROM {rollout_table} r JOIN {template_table} t ON t.id = r.template_id WHERE r.status = '{running}'))"
    )


def parse_lookups(value) -> SliceLookups:
    agent_rows, disabled, active, rollouts = json.loads(value) if isinstance(value, str) else value
    agents = {name: AgentInfo(name, description, slug, tuple(tools or ()), max_steps)
              for name, description, slug, tools, max_steps in agent_rows}
    prompts = {slug: (int(ident), str(stamp)) for slug, (ident, stamp) in active.items()}
    running = {slug: (int(ident), float(weight)) for slug, (ident, weight) in rollouts.items()}
    return SliceLookups(agents, set(disabled), prompts, running)


def load_state(task: Task, agents: dict[str, AgentInfo], tools: Iterable[ToolSpec] | None = None) -> TaskState:
    """The engine's view of the task: its step log (one query) and its inputs. ``tools``: the
    tools the slice may call, when the caller has them (otherwise the registry is read)."""
    approval = {spec.name for spec in (all_tools() if tools is None else tools) if spec.requires_approval}
    approval |= set(settings.TOOLS_REQUIRING_APPROVAL) | set(task.options.get("require_approval") or [])
    steps = task_records(task.pk) if task.step_count else []
    return TaskState(
        query=task.query, agents=agents, steps=steps, step_budget=task.step_budget,
        allow_human=bool(task.options.get("allow_human", True)), approval_tools=frozenset(approval),
        pause_requested=task.pause_requested, cancel_requested=task.cancel_requested,
        context_budget=settings.CONTEXT_TOKEN_BUDGET,
        max_subtasks=int(task.options.get("max_subtasks") or settings.TASK_MAX_SUBTASKS), count_tokens=count_tokens)
