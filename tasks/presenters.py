"""The two objects every interface speaks (DESIGN.md section 6): task and step dicts.

REST, SSE, websocket and pages all call these, so a task looks the same everywhere.
Values are JSON-ready (datetimes as ISO 8601 strings) so they can also travel through the
channel layer.
"""

from __future__ import annotations

from datetime import datetime

from tasks.models import Step, Task


def _when(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


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
        "cost_usd": float(task.cost_usd or 0),
        "created_at": _when(task.created_at),
        "updated_at": _when(task.updated_at),
        "finished_at": _when(task.finished_at),
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
        "duration_ms": step.duration_ms,
        "provider": step.provider or None,
        "model": step.model or None,
        "tokens_cached": step.tokens_cached,
        "tokens_estimated": step.tokens_estimated,
        "cost_usd": None if step.cost_usd is None else float(step.cost_usd),
        "created_at": _when(step.created_at),
    }
