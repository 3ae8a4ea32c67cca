"""Drive AgentOS tasks in this process through the real runner, and time what the model took.

The benchmarks that measure per-step overhead call the runner's slice function directly
(what the Celery task does: load, run a slice, re-enqueue), one task at a time, so the
time between two committed steps is the orchestration cost of one step: load and decide,
build the context, call the offline provider, validate, commit the step and renew the
lease in one transaction, publish to the channel layer. The provider's own time is
measured by wrapping the cached provider instance and subtracted ("LLM time excluded").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LLMClock:
    """Wall-clock intervals (time.time(), like Step.created_at) spent inside provider.complete."""

    calls: list[tuple[float, float]] = field(default_factory=list)

    def install(self) -> None:
        from agentos.llm import get_provider

        provider = get_provider()
        original = provider.complete

        def timed(request: Any) -> Any:
            started = time.time()
            try:
                return original(request)
            finally:
                self.calls.append((started, time.time()))

        provider.complete = timed  # the instance is cached, so the runner calls this wrapper

    def within(self, start: float, end: float) -> float:
        return sum(max(0.0, min(e, end) - max(s, start)) for s, e in self.calls)


def create_tasks(*, owner: Any, query: str, count: int) -> list[str]:
    """Queued tasks created by the product's service (their Celery messages go to the bench Redis)."""
    from tasks.services import task_create

    return [str(task_create(owner=owner, query=query, trigger="api").id) for _ in range(count)]


def run_to_end(task_id: str, *, worker_id: str = "bench-inline", max_slices: int = 1000) -> None:
    """Run slices in this thread until the task leaves queued/running (paused/waiting also stop)."""
    from tasks.models import Task
    from tasks.runner import run_slice

    for _ in range(max_slices):
        run_slice(task_id, worker_id=worker_id)
        status = Task.objects.filter(pk=task_id).values_list("status", flat=True).first()
        if status not in ("queued", "running"):
            return
    raise RuntimeError(f"task {task_id} did not finish within {max_slices} slices")


def step_rows(task_ids: list[str]) -> dict[str, list[dict]]:
    """The steps the runner committed, per task. The trigger step (index 0) is left out: the
    service writes it when the task is created, before the runner starts."""
    from tasks.models import Step

    rows: dict[str, list[dict]] = {task_id: [] for task_id in task_ids}
    for row in Step.objects.filter(task_id__in=task_ids).exclude(kind="trigger").order_by("task_id", "index").values(
            "task_id", "index", "kind", "created_at"):
        rows[str(row["task_id"])].append(row)
    return rows


def per_step_seconds(*, started: dict[str, float], rows: dict[str, list[dict]], clock: LLMClock) -> list[float]:
    """Intervals between consecutive steps of each task (the first from the task's start), LLM time removed."""
    durations: list[float] = []
    for task_id, steps in rows.items():
        previous = started[task_id]
        for step in steps:
            at = step["created_at"].timestamp()
            durations.append((at - previous) - clock.within(previous, at))
            previous = at
    return durations
