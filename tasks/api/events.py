"""Live task events for the SSE view, the execute view and the websocket consumer.

Every client follows the same recipe, which is what makes "no gap, no duplicate" hold:

1. join the channel-layer group ``task-<id>`` (so nothing committed from now on is missed);
2. read the task and the steps after the client's cursor from the database (the snapshot);
3. forward live events through a :class:`StepSequencer`, which remembers the highest step
   index sent: an index already sent is dropped, and an index beyond the next one is
   preceded by the missing steps read from the database (a lost or reordered publish
   costs one query, never a skipped step).

Events are the messages ``tasks.live.publish`` sends: ``{"type": "step"|"status", "seq",
"task", "step"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connections

from agentos.api import NotFound
from observability import live_clients

FINISHED = frozenset({"completed", "failed", "cancelled"})


# Database reads of open streams run on this small pool: connections stay bounded by its
# size however many clients are connected (a thread per stream would hold a connection per
# stream), and the reads themselves take milliseconds.
DB_THREADS = 8
_db_executor = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="live-db")


def in_db_thread(function):
    """``function`` as a coroutine on the stream pool (connections health-checked around it)."""
    return database_sync_to_async(function, thread_sensitive=False, executor=_db_executor)


def close_db_connections() -> None:
    """Close the connections the pool's threads hold (test teardown, shutdown)."""
    # The barrier makes each of the DB_THREADS jobs run on a different thread.
    barrier = threading.Barrier(DB_THREADS, timeout=5)

    def close() -> None:
        connections.close_all()
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()

    futures.wait([_db_executor.submit(close) for _ in range(DB_THREADS)])


def group_name(task_id) -> str:
    return f"task-{task_id}"


def parse_task_id(value) -> uuid.UUID:
    """The UUID in a URL; anything else is a task that does not exist (404, never 500)."""
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        raise NotFound("Task not found.")


def task_for(user, task_id, at_least: str | None = None):
    """The task if ``user`` may see it (a member of its workspace, or staff); NotFound
    otherwise; with ``at_least``, Forbidden when the caller's role is lower."""
    from tasks.selectors import task_get_for_user

    return task_get_for_user(user=user, task_id=parse_task_id(task_id), at_least=at_least)


def parse_after(value, field: str = "after") -> int | None:
    """A step cursor: the client has every step up to this index (None = none yet)."""
    from agentos.api import ApplicationError

    if value is None or value == "":
        return None
    try:
        after = int(str(value).strip())
    except ValueError:
        raise ApplicationError(f"{field} must be an integer step index.", field=field)
    if after < -1:
        raise ApplicationError(f"{field} must be -1 or more.", field=field)
    return None if after == -1 else after


@dataclass
class Snapshot:
    task: dict
    steps: list[dict]


def read_snapshot(task, after: int | None) -> Snapshot:
    """The task, then its steps after ``after``.

    The task row is read first: if it is finished then, every one of its steps was
    committed before, so the step read that follows sees them all.
    """
    from tasks.models import Task
    from tasks.presenters import step_to_dict, task_to_dict
    from tasks.selectors import steps_after

    fresh = Task.objects.get(pk=task.pk)
    task_dict = task_to_dict(fresh)
    return Snapshot(task_dict, [step_to_dict(step) for step in steps_after(task=fresh, after=after)])


def read_steps(task, after: int | None) -> list[dict]:
    from tasks.presenters import step_to_dict
    from tasks.selectors import steps_after

    return [step_to_dict(step) for step in steps_after(task=task, after=after)]


class StepSequencer:
    """Turns snapshot steps and live events into an ordered stream without gaps or repeats."""

    def __init__(self, task, after: int | None) -> None:
        self.task = task
        self.last_index = -1 if after is None else after
        self.task_dict: dict | None = None

    @property
    def finished(self) -> bool:
        return bool(self.task_dict) and self.task_dict.get("status") in FINISHED

    def take_snapshot(self, snapshot: Snapshot) -> list[dict]:
        """Record the snapshot's steps as sent; returns them."""
        self.task_dict = snapshot.task
        fresh = [step for step in snapshot.steps if step["index"] > self.last_index]
        if fresh:
            self.last_index = fresh[-1]["index"]
        return fresh

    def reconcile(self, snapshot: Snapshot) -> list[dict]:
        """Events for what a fresh read shows and the client has not had (the idle safety net)."""
        changed = snapshot.task.get("status") != (self.task_dict or {}).get("status")
        self.task_dict = snapshot.task
        events = self._step_events(snapshot.steps)
        if changed or events:
            events.append({"type": "status", "seq": self.last_index, "task": self.task_dict, "step": None})
        return events

    async def catch_up(self) -> list[dict]:
        """Step events for every committed step not sent yet (read from the database)."""
        steps = await in_db_thread(read_steps)(self.task, self.last_index)
        return self._step_events(steps)

    def _step_events(self, steps: list[dict]) -> list[dict]:
        events = []
        for step in steps:
            if step["index"] <= self.last_index:
                continue
            self.last_index = step["index"]
            events.append({"type": "step", "seq": step["index"], "task": self.task_dict, "step": step})
        return events

    async def admit(self, event: dict) -> list[dict]:
        """The events to send for one live event, in order (possibly none).

        Steps read back to fill a gap carry the task as the client last had it; only the
        event's own step (and what follows it) carries the event's task. A client that
        stops at a finished status therefore reads every step before it.
        """
        seq = event.get("seq")
        incoming = event["task"] if isinstance(event.get("task"), dict) else None
        out: list[dict] = []
        if event.get("type") == "step" and isinstance(event.get("step"), dict):
            if seq is None or seq <= self.last_index:
                if incoming:
                    self.task_dict = incoming
                return out  # already sent (it was in the snapshot or arrived twice)
            if seq > self.last_index + 1:
                out += await self.catch_up()  # a publish went missing; the database has it
            if incoming:
                self.task_dict = incoming
                for caught in out:
                    if caught["seq"] >= seq:
                        caught["task"] = incoming
            out += self._step_events([event["step"]])
            return out
        # A status change: make sure every step it follows has gone out first.
        finished = (incoming or {}).get("status") in FINISHED or self.finished
        if (isinstance(seq, int) and seq > self.last_index) or finished:
            out += await self.catch_up()
        if incoming:
            self.task_dict = incoming
        out.append({"type": "status", "seq": self.last_index if self.last_index >= 0 else seq,
                    "task": self.task_dict, "step": None})
        return out


class TaskSubscription:
    """Membership of ``task-<id>`` on a private channel, as an async context manager.

    A background task copies the channel's messages into a local queue: cancelling a
    channel-layer ``receive()`` (e.g. on a timeout) unsubscribes the channel and drops what
    it buffered, so timeouts are applied to the local queue instead.
    """

    def __init__(self, task_id) -> None:
        self.group = group_name(task_id)
        self.queue: asyncio.Queue[dict] = asyncio.Queue()
        self.layer = None
        self.channel: str | None = None
        self._pump: asyncio.Task | None = None

    async def __aenter__(self) -> TaskSubscription:
        self.layer = get_channel_layer()
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, self.channel)
        await live_clients.joined(self.group, self.channel)
        self._pump = asyncio.ensure_future(self._run())
        return self

    async def _run(self) -> None:
        while True:
            message = await self.layer.receive(self.channel)
            if message.get("type") == "task.event" and isinstance(message.get("event"), dict):
                self.queue.put_nowait(message["event"])

    async def next(self, timeout: float) -> dict | None:
        """The next event, or None after ``timeout`` seconds without one."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    async def __aexit__(self, *exc_info) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pump
        with contextlib.suppress(Exception):
            await self.layer.group_discard(self.group, self.channel)
        await live_clients.left(self.group, self.channel)
