"""What a slice reads when it starts, besides the task: the enabled agents, the disabled
tools, the active prompt versions, the running prompt rollouts and the versions of the
tool providers (so the MCP tools come from the process's cache while they are unchanged,
tools/registry.py), and the task's step log, all read in the lease's own statement (one
round trip); then the task's state for the engine."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

from prompts.tokens import count_tokens
from tasks.context import RECORD_FIELDS, record_from_row, task_records
from tasks.engine.state import AgentInfo, StepRecord, TaskState
from tasks.models import AgentSpec, Step, Task
from tools.models import ToolSetting
from tools.registry import ToolSpec, all_tools, provider_versions_sql


@dataclass
class SliceLookups:
    agents: dict[str, AgentInfo]  # the enabled agents, by name
    disabled_tools: set[str]  # tools an administrator disabled
    active_prompts: dict[str, tuple[int, str]]  # prompt slug -> (active version id, template stamp)
    rollouts: dict[str, tuple[int, float]]  # prompt slug -> (candidate version id, weight) of running rollouts
    tool_versions: list  # the tool providers' versions (tools.registry.provider_versions_sql)
    steps: list[StepRecord]  # the step log as the statement saw it (see load_state)


@lru_cache(maxsize=1)
def lookups_sql() -> str:
    """One JSON array of the enabled agents, the names of the disabled tools, the active
    prompt versions (slug -> [version id, template stamp]; their content then comes from the
    process's cache of immutable versions, prompts.services.version_cached) and the running
    rollouts (slug -> [candidate version id, weight], as prompts.services.running_rollouts)
    and the tool providers' versions; then the task's step log (the fields of
    ``tasks.context.RECORD_FIELDS``, in order). No parameters: the step log is that of the
    leased row, ``leased`` in the lease's statement (tasks/leases.py)."""
    from prompts.models import PromptRollout, PromptTemplate, PromptVersion

    agent_table, setting_table = AgentSpec._meta.db_table, ToolSetting._meta.db_table
    version_table, template_table = PromptVersion._meta.db_table, PromptTemplate._meta.db_table
    rollout_table, running = PromptRollout._meta.db_table, PromptRollout.Status.RUNNING.value
    step_columns = ", ".join(f"s.{Step._meta.get_field(name).column}" for name in RECORD_FIELDS)
    # Table names from the models; no values in this expression.
    return (
        "SELECT json_build_array("  # noqa: S608
        "(SELECT coalesce(json_agg(json_build_array(name, description, prompt_slug, allowed_tools, max_steps) "
        f"ORDER BY name), '[]') FROM {agent_table} WHERE enabled), "
        f"(SELECT coalesce(json_agg(name), '[]') FROM {setting_table} WHERE NOT enabled), "
        f"(SELECT coalesce(json_object_agg(t.slug, json_build_array(v.id, t.updated_at)), '{{}}') "
        f"FROM {version_table} v JOIN {template_table} t ON t.id = v.template_id WHERE v.is_active), "
        f"(SELECT coalesce(json_object_agg(t.slug, json_build_array(r.candidate_id, r.weight)), '{{}}') "
        f"FROM {rollout_table} r JOIN {template_table} t ON t.id = r.template_id WHERE r.status = '{running}'), "
        f"{provider_versions_sql()}, "
        f"(SELECT coalesce(json_agg(json_build_array({step_columns}) ORDER BY s.index), '[]') "
        f"FROM {Step._meta.db_table} s WHERE s.task_id = leased.id))"
    )


def parse_lookups(value) -> SliceLookups:
    parsed = json.loads(value) if isinstance(value, str) else value
    agent_rows, disabled, active, rollouts, tool_versions, steps = parsed
    agents = {name: AgentInfo(name, description, slug, tuple(tools or ()), max_steps)
              for name, description, slug, tools, max_steps in agent_rows}
    prompts = {slug: (int(ident), str(stamp)) for slug, (ident, stamp) in active.items()}
    running = {slug: (int(ident), float(weight)) for slug, (ident, weight) in rollouts.items()}
    records = [record_from_row(row) for row in steps]
    return SliceLookups(agents, set(disabled), prompts, running, tool_versions, records)


def load_state(task: Task, agents: dict[str, AgentInfo], tools: Iterable[ToolSpec] | None = None,
               steps: list[StepRecord] | None = None) -> TaskState:
    """The engine's view of the task: its step log and its inputs. ``tools``: the tools the
    slice may call, when the caller has them (otherwise the registry is read); ``steps``: the
    step log read with the lease (otherwise one query)."""
    approval = {spec.name for spec in (all_tools() if tools is None else tools) if spec.requires_approval}
    approval |= set(settings.TOOLS_REQUIRING_APPROVAL) | set(task.options.get("require_approval") or [])
    if steps is None or len(steps) != task.step_count:
        # The lease's statement reads the log in the snapshot it started with; if a service
        # committed a step while the statement waited for the row lock, the row it returns
        # already counts that step and the log does not: read the log again.
        steps = task_records(task.pk) if task.step_count else []
    return TaskState(
        query=task.query, agents=agents, steps=steps, step_budget=task.step_budget,
        allow_human=bool(task.options.get("allow_human", True)), approval_tools=frozenset(approval),
        pause_requested=task.pause_requested, cancel_requested=task.cancel_requested,
        context_budget=settings.CONTEXT_TOKEN_BUDGET,
        max_subtasks=int(task.options.get("max_subtasks") or settings.TASK_MAX_SUBTASKS), count_tokens=count_tokens)
