"""Live events: one helper publishes a task's committed steps and status changes.

Every event goes to the channel-layer group ``task-<id>`` as
``{"type": "task.event", "event": {"type": "step"|"status", "seq", "task", "step"}}``;
websocket consumers and the SSE view relay it. Callers publish only after the commit
(``transaction.on_commit``), so a client never sees a step that could still roll back.

``async_to_sync(group_send)`` would start an event loop and a Redis connection for every
call (about 8 ms); instead one background event loop per process keeps the connection and
each publish waits for its send, so events of a task leave in commit order (about 0.5 ms).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)
PUBLISH_TIMEOUT = 5.0

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


def group_name(task_id: Any) -> str:
    return f"task-{task_id}"


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _lock:
        # A forked worker child must not reuse its parent's (threadless) loop.
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            _loop_pid = os.getpid()
            threading.Thread(target=_loop.run_forever, name="live-publish", daemon=True).start()
        return _loop


def publish(task_id: Any, event: dict) -> None:
    """Send ``event`` to the task's group. Never raises: live updates are best effort, the
    step log stays the source of truth (clients catch up with ``?after=N``)."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "task.event", "event": event}
    try:
        future = asyncio.run_coroutine_threadsafe(layer.group_send(group_name(task_id), message), _background_loop())
        future.result(PUBLISH_TIMEOUT)
    except Exception:
        logger.warning("could not publish event %s of task %s", event.get("seq"), task_id, exc_info=True)


def step_event(task, step) -> dict:
    from tasks.presenters import step_to_dict, task_to_dict

    return {"type": "step", "seq": step.index, "task": task_to_dict(task), "step": step_to_dict(step)}


def status_event(task) -> dict:
    from tasks.presenters import task_to_dict

    return {"type": "status", "seq": task.step_count - 1, "task": task_to_dict(task), "step": None}
