"""Reads of the tasks app; every read of a task is scoped to the caller's workspaces (staff
see all): another workspace's task is NotFound; ``at_least`` a role the caller's membership
lacks is Forbidden (workspaces.access)."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from agentos.api import ApplicationError, NotFound
from tasks.models import Step, Task, TaskStatus


def _visible_tasks(user) -> QuerySet[Task]:
    from workspaces.access import scope

    return scope(Task.objects.all(), user)


def task_get_for_user(*, user, task_id, at_least: str | None = None) -> Task:
    """The task, or NotFound when it does not exist or is in none of the caller's workspaces;
    with ``at_least`` (a role, e.g. "operator"), Forbidden when the caller's role there is lower."""
    try:
        ident = task_id if isinstance(task_id, uuid.UUID) else uuid.UUID(str(task_id))
    except ValueError:
        raise NotFound("task not found")
    task = _visible_tasks(user).filter(pk=ident).first()
    if task is None:
        raise NotFound("task not found")
    if at_least:
        from workspaces.access import require_role

        require_role(user, task.workspace_id, at_least, what="task")
    return task


def _listable_tasks(user) -> QuerySet[Task]:
    """The caller's tasks for a list: the workspace ids are read first (one small query), so
    the list is ``workspace_id IN (<ids>)``: for one workspace (the usual case) the planner
    walks task_workspace_created_idx (or task_workspace_status_idx with a status) newest
    first and stops after the page, where a subquery made it read and sort every task of
    those workspaces."""
    from workspaces.access import is_superuser, member_workspace_ids

    if is_superuser(user):
        return Task.objects.all()
    ids = [row["workspace_id"] for row in member_workspace_ids(user)]
    return Task.objects.filter(workspace_id__in=ids)


def tasks_for_user(*, user, status: str | None = None, workspace_id: int | None = None) -> QuerySet[Task]:
    """The tasks the caller may see, newest first (a page of them costs the same whatever
    their number: tasks/tests/test_many_tasks.py)."""
    tasks = _listable_tasks(user)
    if workspace_id is not None:
        tasks = tasks.filter(workspace_id=workspace_id)
    if status:
        if status not in TaskStatus.values:
            raise ApplicationError(f"unknown status {status!r}; use one of {', '.join(TaskStatus.values)}",
                                   field="status")
        tasks = tasks.filter(status=status)
    return tasks.order_by("-created_at")


def steps_after(*, task: Task, after: int | None = None) -> QuerySet[Step]:
    """The task's steps in index order, those after index ``after`` when given."""
    steps = Step.objects.filter(task=task)
    if after is not None:
        steps = steps.filter(index__gt=after)
    return steps.order_by("index")
