"""Helpers for the API, SSE and websocket tests: rows made directly, tokens, event parsing."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from tasks.models import Step, Task


@pytest.fixture
def stream_db_connections():
    """Close the stream pool's database connections after the test (the test database is
    dropped at the end of the run, which fails while connections are open)."""
    yield
    from tasks.api.events import close_db_connections

    close_db_connections()


def make_task(owner, *, status: str = "running", steps: int = 0, **fields) -> Task:
    if status in ("completed", "failed", "cancelled"):
        fields.setdefault("finished_at", timezone.now())
    if status == "completed":
        fields.setdefault("result", "The answer.")
    task = Task.objects.create(owner=owner, query=fields.pop("query", "What is 6 * 7?"), status=status, **fields)
    for index in range(steps):
        add_step(task, index)
    return task


def add_step(task: Task, index: int, kind: str = "llm") -> Step:
    step = Step.objects.create(task=task, index=index, kind=kind, agent="research", subtask_id="s1",
                               input={"n": index}, output={"action": "finish", "result": str(index)},
                               prompt_label="agent_research@1" if kind == "llm" else "", tokens_in=10,
                               tokens_out=5, duration_ms=3)
    Task.objects.filter(pk=task.pk).update(step_count=index + 1, total_steps=max(task.total_steps, index + 1))
    return step


def token_for(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def parse_sse(text: str) -> list[dict]:
    """SSE text -> [{"event", "id", "data"(parsed JSON), "comment"}] in order."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        item: dict = {"event": None, "id": None, "data": None, "comment": None}
        for line in block.split("\n"):
            if line.startswith(":"):
                item["comment"] = line[1:].strip()
            elif line.startswith("id: "):
                item["id"] = int(line[4:])
            elif line.startswith("event: "):
                item["event"] = line[7:]
            elif line.startswith("data: "):
                item["data"] = json.loads(line[6:])
            elif line.startswith("retry: "):
                item["event"] = "retry"
        events.append(item)
    return events
