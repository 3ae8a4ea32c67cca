"""The two objects every interface speaks (DESIGN.md section 6): task and step dicts.

REST, SSE, websocket and pages all call these, so a task looks the same everywhere.
Values are JSON-ready (datetimes as ISO 8601 strings) so they can also travel through the
channel layer.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from django.urls import reverse

from tasks.models import FINISHED_STATUSES, Step, Task, TaskStatus

# Where provider_error is shown: it describes why the task waits, paused or failed.
_PROVIDER_ERROR_STATUSES = (TaskStatus.WAITING_PROVIDER, TaskStatus.PAUSED, TaskStatus.FAILED)
_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


_ROUTES = ("task-stream", "task-pause", "task-resume", "task-cancel", "task-respond", "task-retry")


@lru_cache(maxsize=16)
def _path(name: str) -> str:
    # Built once per route (a step event carries the task, and steps are committed often).
    return reverse(name, kwargs={"task_id": _PLACEHOLDER})


def warm_up() -> None:
    """Build the routes' paths once, before many threads need them: the first ``reverse``
    builds Django's URL resolver tables, and a burst of threads on a fresh process would each
    build them at once (the cache does not stop concurrent misses)."""
    for name in _ROUTES:
        _path(name)


def task_links(task: Task) -> dict:
    """The task's stream and the controls that apply now (paths on this server; null when a
    control does not apply in the task's status)."""
    def url(name: str, when: bool) -> str | None:
        return _path(name).replace(_PLACEHOLDER, str(task.id)) if when else None

    active = task.status in (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.WAITING_PROVIDER)
    return {
        "stream_url": url("task-stream", True),
        "pause_url": url("task-pause", active and not task.pause_requested),
        "resume_url": url("task-resume", task.status == TaskStatus.PAUSED or (task.pause_requested and active)),
        "cancel_url": url("task-cancel", task.status not in FINISHED_STATUSES and not task.cancel_requested),
        "respond_url": url("task-respond", task.status == TaskStatus.WAITING_HUMAN and bool(task.waiting_for)),
        "retry_url": url("task-retry", task.status == TaskStatus.FAILED),
    }


def _when(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _workspace(task: Task) -> dict | None:
    """{"id", "name"} of the task's workspace (the name cached: every step event carries it)."""
    if task.workspace_id is None:
        return None
    if Task.workspace.is_cached(task):
        return {"id": task.workspace_id, "name": task.workspace.name}
    from workspaces.selectors import workspace_name

    return {"id": task.workspace_id, "name": workspace_name(task.workspace_id)}


def task_to_dict(task: Task) -> dict:
    return {
        "task_id": str(task.id),
        "query": task.query,
        "status": task.status,
        "trigger": task.trigger,
        "current_step": task.step_count,
        "total_steps": max(task.total_steps, task.step_count),
        "progress": round(float(task.progress), 4),
        "intermediate_results": list(task.intermediate_results or []),
        "result": task.result or None,
        "error": task.error or None,
        "waiting_for": task.waiting_for,
        "provider_error": task.provider_error if task.status in _PROVIDER_ERROR_STATUSES else None,
        "cost_usd": float(task.cost_usd or 0),
        "created_at": _when(task.created_at),
        "updated_at": _when(task.updated_at),
        "finished_at": _when(task.finished_at),
        "forked_from": ({"task_id": str(task.forked_from_id), "step": task.forked_at_step}
                        if task.forked_from_id else None),
        "workspace": _workspace(task),
        **task_links(task),
    }


def step_to_dict(step: Step) -> dict:
    return {
        "index": step.index,
        "kind": step.kind,
        "agent": step.agent or None,
        "subtask": step.subtask_id or None,
        "status": step.status,
        "input": step.input,
        "output": step.output,
        "error": step.error or None,
        "prompt_version": step.prompt_label or None,
        "tokens_in": step.tokens_in,
        "tokens_out": step.tokens_out,
        "tokens_estimated": step.tokens_estimated,
        "duration_ms": step.duration_ms,
        "provider": step.provider or None,
        "model": step.model or None,
        "tokens_cached": step.tokens_cached,
        "cost_usd": None if step.cost_usd is None else float(step.cost_usd),
        "created_at": _when(step.created_at),
    }
