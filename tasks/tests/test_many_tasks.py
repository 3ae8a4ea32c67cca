"""With 10,000 tasks the list pages and endpoints stay fast: paginated, and the number of
queries does not grow with the number of tasks (the indexes they need: tasks/models.py)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tasks.models import Step, StepKind, Task, TaskStatus
from tasks.pages.views import TASKS_PER_PAGE

pytestmark = pytest.mark.django_db

STATUSES = [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.RUNNING, TaskStatus.QUEUED, TaskStatus.WAITING_HUMAN,
            TaskStatus.PAUSED, TaskStatus.CANCELLED, TaskStatus.WAITING_PROVIDER]


def add_tasks(owner, count: int) -> list[Task]:
    """``count`` tasks in the owner's workspace in every status, each with a step, cheaply."""
    from workspaces.access import default_workspace

    workspace = default_workspace(owner)
    tasks = Task.objects.bulk_create(
        [Task(owner=owner, workspace=workspace, query=f"question {i}", status=STATUSES[i % len(STATUSES)],
              step_count=1, intermediate_results=[{"subtask": "s1", "agent": "research", "status": "completed",
                                                   "result": "an answer"}])
         for i in range(count)], batch_size=2000)
    Step.objects.bulk_create([Step(task=task, index=0, kind=StepKind.TRIGGER) for task in tasks], batch_size=2000)
    return tasks


def queries(request) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        response = request()
    return len(captured), response


def test_list_pages_and_endpoints_do_not_query_more_with_10000_tasks(user, other_user, staff_user, client,
                                                                    api_client):
    from rest_framework.test import APIClient

    from workspaces.access import default_workspace

    client.force_login(user)
    api_client.force_authenticate(user)
    staff_client = APIClient()
    staff_client.force_authenticate(staff_user)
    first = add_tasks(user, 3)[0]  # fewer than a page: a query per row would show too
    add_tasks(other_user, 3)
    default_workspace(staff_user)
    reads = {
        "dashboard": lambda: client.get("/"),
        "dashboard, page 2": lambda: client.get("/?page=2"),
        "dashboard, completed": lambda: client.get("/?status=completed"),
        "task page": lambda: client.get(f"/tasks/{first.pk}/"),
        "task list API": lambda: api_client.get("/api/v1/tasks/"),
        "task list API, offset": lambda: api_client.get("/api/v1/tasks/?offset=2&limit=50"),
        "task list API, running": lambda: api_client.get("/api/v1/tasks/?status=running"),
        "task list API, staff": lambda: staff_client.get("/api/v1/tasks/?status=failed"),
        "task API": lambda: api_client.get(f"/api/v1/tasks/{first.pk}/"),
        "steps API": lambda: api_client.get(f"/api/v1/tasks/{first.pk}/steps/"),
    }
    for read in reads.values():
        read()  # warm per-process caches (prompts, tools, the workspace)
    few = {name: queries(read)[0] for name, read in reads.items()}

    add_tasks(user, 10_000 - 3)
    add_tasks(other_user, 2_000)
    many = {}
    for name, read in reads.items():
        many[name], response = queries(read)
        assert response.status_code == 200, name
    assert many == few, "the number of queries grows with the number of tasks"
    assert max(many.values()) <= 15, many

    page = api_client.get("/api/v1/tasks/").json()
    assert page["count"] == 10_000 and len(page["results"]) == 50 and page["next"]
    rows = re.findall(rb'data-task-id="', client.get("/").content)
    assert 0 < len(rows) <= TASKS_PER_PAGE
