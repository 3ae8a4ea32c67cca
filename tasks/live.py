"""Live events: one helper publishes a task's committed steps and status changes.

Every event goes to the channel-layer group ``task-<id>`` as
``{"type": "task.event", "event": {"type": "step"|"status", "seq", "task", "step"}}``;
websocket consumers and the SSE view relay it. Callers publish only after the commit
(``transaction.on_commit``), so a client never sees a step that could still roll back.

``async_to_sync(group_send)`` would start an event loop and a Redis connection for every
call (about 8 ms). Instead one background event loop per process keeps the connection, and
``publish`` only hands the event to a queue that a single coroutine drains in order: the
worker does not wait for Redis, and a task's events still leave in commit order.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
from typing import Any

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)
PUBLISH_TIMEOUT = 5.0

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_queue: asyncio.Queue | None = None
_loop_pid: int | None = None


def group_name(task_id: Any) -> str:
    return f"task-{task_id}"


async def _drain(queue: asyncio.Queue) -> None:
    while True:
        item = await queue.get()
        if isinstance(item, asyncio.Future):  # a flush() marker: everything before it is sent
            item.set_result(None)
            continue
        group, message = item
        layer = get_channel_layer()
        try:
            await asyncio.wait_for(layer.group_send(group, message), PUBLISH_TIMEOUT)
        except Exception:  # best effort: the step log stays the source of truth
            logger.warning("could not publish event %s to %s", message["event"].get("seq"), group, exc_info=True)


def _start() -> tuple[asyncio.AbstractEventLoop, asyncio.Queue]:
    global _loop, _queue, _loop_pid
    with _lock:
        # A forked worker child must not reuse its parent's (threadless) loop.
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():
            loop = asyncio.new_event_loop()
            queue: asyncio.Queue = asyncio.Queue()
            threading.Thread(target=loop.run_forever, name="live-publish", daemon=True).start()
            asyncio.run_coroutine_threadsafe(_drain(queue), loop)
            _loop, _queue, _loop_pid = loop, queue, os.getpid()
            atexit.register(_flush_at_exit)
        return _loop, _queue


def publish(task_id: Any, event: dict) -> None:
    """Queue ``event`` for the task's group and return at once. Never raises: live updates
    are best effort; clients catch up from the step log (``?after=N``)."""
    if get_channel_layer() is None:
        return
    try:
        loop, queue = _start()
        loop.call_soon_threadsafe(queue.put_nowait, (group_name(task_id), {"type": "task.event", "event": event}))
    except Exception:
        logger.warning("could not queue event %s of task %s", event.get("seq"), task_id, exc_info=True)


def _flush_at_exit() -> None:
    try:
        flush(1.0)
    except Exception:  # noqa: BLE001 (at exit, nothing else can be done about it)
        logger.warning("live events still queued at exit were dropped")


def flush(timeout: float = PUBLISH_TIMEOUT) -> None:
    """Wait until every event queued so far has been sent (tests, short-lived commands)."""
    if _loop is None or _loop_pid != os.getpid():
        return
    loop, queue = _start()

    async def marker() -> None:
        done = loop.create_future()
        queue.put_nowait(done)
        await done

    asyncio.run_coroutine_threadsafe(marker(), loop).result(timeout)


def step_event(task, step) -> dict:
    from tasks.presenters import step_to_dict, task_to_dict

    return {"type": "step", "seq": step.index, "task": task_to_dict(task), "step": step_to_dict(step)}


def status_event(task) -> dict:
    from tasks.presenters import task_to_dict

    return {"type": "status", "seq": task.step_count - 1, "task": task_to_dict(task), "step": None}
