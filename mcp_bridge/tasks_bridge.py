"""``run_task`` and ``get_task`` of the MCP server: the tasks app's services and selectors,
and the channel-layer subscription the execute endpoint waits on (tasks/api/events.py)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from django.conf import settings

from agentos.api import ApplicationError
from tasks.api.events import TaskSubscription, in_db_thread

STOP_WAITING = frozenset({"completed", "failed", "cancelled", "waiting_human", "paused"})
DEFAULT_WAIT = 60.0
RECHECK_SECONDS = 5.0


def _create(user, query: Any):
    from workspaces.task_actions import task_create_as

    if not isinstance(query, str):
        raise ApplicationError("query must be a string", field="query")
    # A viewer's token is refused (Forbidden), as on every other interface.
    return task_create_as(actor=user, query=query, trigger="api", trigger_details={"endpoint": "/mcp"})


def _read(task) -> dict:
    from tasks.presenters import task_to_dict

    task.refresh_from_db()
    return task_to_dict(task)


def get_task(user, arguments: dict) -> dict:
    from tasks.presenters import task_to_dict
    from tasks.selectors import task_get_for_user

    return task_to_dict(task_get_for_user(user=user, task_id=str(arguments.get("task_id") or "")))


def _wait_seconds(arguments: dict) -> float:
    wait = arguments.get("wait", DEFAULT_WAIT)
    if isinstance(wait, bool) or not isinstance(wait, (int, float)):
        raise ApplicationError("wait must be a number of seconds, 0 or more", field="wait")
    # The SDK's JSON parser accepts NaN and Infinity: NaN would pass every comparison below
    # and make the wait a loop that never sleeps.
    if isinstance(wait, float) and not math.isfinite(wait):
        raise ApplicationError("wait must be a finite number of seconds, not NaN or Infinity", field="wait",
                               code="invalid_number")
    if wait < 0:
        raise ApplicationError("wait must be a number of seconds, 0 or more", field="wait")
    return float(min(wait, settings.MCP_RUN_TASK_MAX_WAIT))  # an integer too big for a float is capped first


def _progress_message(task: dict, step: dict | None) -> str:
    if step:
        where = f" ({step['agent']})" if step.get("agent") else ""
        return f"step {step['index']}: {step['kind']}{where}, {step['status']}"
    return f"task {task['status']}"


async def run_task(ctx, user, arguments: dict) -> dict:
    """Create the task, then follow it until it stops or ``wait`` passes, sending a progress
    notification each time a step commits (progress = committed steps, total = estimate)."""
    wait = _wait_seconds(arguments)
    task = await in_db_thread(_create)(user, arguments.get("query"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    reported = 0
    # Subscribe first, then read: a step committed in between is seen by one or the other.
    async with TaskSubscription(task.pk) as subscription:
        task_dict, step = await in_db_thread(_read)(task), None
        while True:
            done = task_dict["current_step"]
            if done > reported:
                reported = done
                await ctx.session.report_progress(done, max(task_dict["total_steps"], done),
                                                  _progress_message(task_dict, step))
            remaining = deadline - loop.time()
            if task_dict["status"] in STOP_WAITING or remaining <= 0:
                break
            event = await subscription.next(timeout=min(remaining, RECHECK_SECONDS))
            if event is not None and isinstance(event.get("task"), dict):
                task_dict, step = event["task"], event.get("step")
            else:
                task_dict, step = await in_db_thread(_read)(task), None
    if task_dict["status"] in STOP_WAITING:
        task_dict = await in_db_thread(_read)(task)  # the final row, with every step counted
    return task_dict
