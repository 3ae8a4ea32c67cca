"""Control of a task by a person (pause, resume, cancel, retry, respond, fork): the role
check, the service call and the audit row, in one transaction. Every interface (REST,
websocket, pages, MCP) calls :func:`task_act`, so they cannot differ on who may do what."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from workspaces.access import require_role
from workspaces.audit import audit_record
from workspaces.models import Role

CONTROLS = ("pause", "resume", "cancel", "retry")


def _state(task) -> dict:
    return {"status": task.status, "pause_requested": task.pause_requested,
            "cancel_requested": task.cancel_requested, "waiting_for": task.waiting_for}


def task_act(*, actor, task, action: str, **arguments: Any):
    """Apply ``action`` to ``task`` for ``actor`` (an operator of its workspace); returns the
    task afterwards (for ``fork``: the new task). Forbidden for a lower role."""
    from tasks import services
    from tasks.models import Task

    require_role(actor, task.workspace_id, Role.OPERATOR, what="task")
    with transaction.atomic():
        before = _state(Task.objects.select_for_update().get(pk=task.pk))
        if action in CONTROLS:
            result = getattr(services, f"task_{action}")(task=task)
            audit_action = f"task.{action}"
        elif action == "respond":
            waiting = before["waiting_for"] or {}
            result = services.task_respond(task=task, answered_by=actor.get_username(), **arguments)
            answer = result.steps.order_by("-index").values_list("input", flat=True).first() or {}
            approve = answer.get("approve")
            audit_action = ("task.respond" if waiting.get("reason") != "approval"
                            else "task.approve" if approve else "task.deny")
        elif action == "fork":
            from tasks.timetravel.fork import task_fork

            fork = task_fork(task=task, user=actor, **arguments)
            audit_record(actor=actor, action="task.fork", target_type="task", target_id=task.pk,
                         workspace_id=task.workspace_id, before=before,
                         after={"fork": str(fork.pk), "at": arguments.get("at")})
            return fork
        else:
            raise ValueError(f"unknown task action {action!r}")
        audit_record(actor=actor, action=audit_action, target_type="task", target_id=task.pk,
                     workspace_id=task.workspace_id, before=before, after=_state(result))
    return result


def task_create_as(*, actor, workspace_id=None, **arguments: Any):
    """Start a task for ``actor`` in ``workspace_id`` (default: their default workspace);
    they must be an operator there."""
    from tasks.services import task_create
    from workspaces.access import workspace_for_write

    workspace = workspace_for_write(user=actor, workspace_id=workspace_id, at_least=Role.OPERATOR)
    return task_create(owner=actor, workspace=workspace, **arguments)
