"""Live events: one helper publishes a task's committed steps and status changes.

Every event goes to the channel-layer group ``task-<id>`` as
``{"type": "task.event", "event": {"type": "step"|"status", "seq", "task", "step"}}``;
websocket consumers and the SSE view relay it (tasks/api/events.py orders them by ``seq``).
Callers publish only after the commit (``transaction.on_commit``; the step store does it
for every step), so a client never sees a step that could still roll back.

Events are sent with the channel layer's public API, ``group_send``, by one publisher
thread per process that keeps one event loop: events leave in the order they were
published, the caller never waits for Redis, and the layer keeps its connections on that
loop (``async_to_sync(group_send)`` per event would start a loop, and with channels_redis
open a Redis connection, for every event). Publishing is best effort: a send that fails or
takes longer than ``SEND_TIMEOUT`` is logged and dropped; clients catch up from the step
log (``?after=N``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from typing import Any

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)
SEND_TIMEOUT = 2.0  # seconds per group_send
MAX_QUEUED = 10_000  # events waiting for the publisher; more are dropped (Redis is down)


def group_name(task_id: Any) -> str:
    return f"task-{task_id}"


class _Publisher:
    """A daemon thread sending queued events with ``group_send`` on its own event loop."""

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=MAX_QUEUED)
        self.pid = os.getpid()
        threading.Thread(target=self._run, name="live-publisher", daemon=True).start()

    def put(self, item: tuple) -> None:
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            logger.warning("live event queue full; event of task %s dropped", item[0])

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        while True:
            task_id, event, done = self.queue.get()
            try:
                if event is not None:
                    loop.run_until_complete(self._send(task_id, event))
            except Exception:  # best effort: the step log stays the source of truth
                logger.warning("could not publish event %s of task %s", event.get("seq"), task_id, exc_info=True)
            finally:
                if done is not None:
                    done.set()

    @staticmethod
    async def _send(task_id: Any, event: dict) -> None:
        layer = get_channel_layer()
        if layer is not None:
            message = {"type": "task.event", "event": event}
            await asyncio.wait_for(layer.group_send(group_name(task_id), message), SEND_TIMEOUT)


_publisher: _Publisher | None = None
_lock = threading.Lock()


def _current() -> _Publisher:
    global _publisher
    publisher = _publisher
    if publisher is None or publisher.pid != os.getpid():  # none yet, or inherited by a fork
        with _lock:
            if _publisher is None or _publisher.pid != os.getpid():
                _publisher = _Publisher()
            publisher = _publisher
    return publisher


def publish(task_id: Any, event: dict) -> None:
    """Queue ``event`` for the task's group and return at once. Never raises."""
    try:
        _current().put((task_id, event, None))
    except Exception:
        logger.warning("could not queue event %s of task %s", event.get("seq"), task_id, exc_info=True)


def flush(timeout: float = 5.0) -> bool:
    """Wait until the events published so far by this process have been sent (or dropped)."""
    done = threading.Event()
    _current().put((None, None, done))
    return done.wait(timeout)


def step_event(task, step) -> dict:
    from tasks.presenters import step_to_dict, task_to_dict

    return {"type": "step", "seq": step.index, "task": task_to_dict(task), "step": step_to_dict(step)}


def status_event(task) -> dict:
    from tasks.presenters import task_to_dict

    return {"type": "status", "seq": task.step_count - 1, "task": task_to_dict(task), "step": None}
