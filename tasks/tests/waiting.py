"""Polling helpers for tests that watch a real worker."""

from __future__ import annotations

import time

from tasks.models import Step, Task


def wait_until(check, timeout: float = 60.0, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def wait_status(task: Task, *statuses: str, timeout: float = 60.0) -> Task:
    def check():
        task.refresh_from_db()
        return task.status in statuses

    wait_until(check, timeout, message=f"status in {statuses} (task {task.id})")
    return task


def steps_of(task: Task) -> list[Step]:
    return list(Step.objects.filter(task=task).order_by("index"))


def assert_contiguous(task: Task) -> list[Step]:
    steps = steps_of(task)
    assert [s.index for s in steps] == list(range(len(steps))), [s.index for s in steps]
    assert task.step_count == len(steps)
    return steps
