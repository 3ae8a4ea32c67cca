"""Live events: one helper publishes a task's committed steps and status changes.

Every event goes to the channel-layer group ``task-<id>`` as
``{"type": "task.event", "event": {"type": "step"|"status", "seq", "task", "step"}}``;
websocket consumers and the SSE view relay it. Callers publish only after the commit
(``transaction.on_commit``), so a client never sees a step that could still roll back.

With channels_redis's pub/sub layer (the configured one), ``publish`` sends the PUBLISH
itself, from the caller's thread, with a synchronous Redis connection: the layer's own
serializer, group channel name and shard, so consumers receive exactly what
``group_send`` would have sent. The connection's replies are off, so a publish is one
socket write (about 15 us), in commit order per thread. A background thread with its own
event loop (``async_to_sync(group_send)`` would need one per call, about 8 ms) cost more:
its Python work competed with the runner for the interpreter lock on every step.
Publishing stays best effort: a short timeout, one retry on a new connection, then events
are dropped for ``COOL_DOWN`` seconds (clients catch up from the step log), so a Redis
outage never stalls a worker. ``prepare`` (the event serialized, its channel chosen) and
``send`` (the write) can run apart: the runner prepares a step's event while the step's
commit is still on its way.

Any other channel-layer configuration (hosts without an address, another layer) is
published with ``async_to_sync(layer.group_send)``: correct, but an event loop per call.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)
DIRECT_TIMEOUT = 0.25  # connect and reply, per PUBLISH of the direct path
COOL_DOWN = 1.0  # seconds without publishing after a PUBLISH failed twice

_lock = threading.Lock()


def group_name(task_id: Any) -> str:
    return f"task-{task_id}"


class _Direct:
    """PUBLISH to channels_redis's pub/sub layer from the caller's thread (see the module
    docstring). Built from the layer's own configuration: its loop layer names the group's
    channel and picks its shard, the layer serializes.

    Each thread has its own connection per shard, with Redis's replies turned off (CLIENT
    REPLY OFF): a publish costs the write, not a round trip. Before writing, a readable
    socket (the server closed the connection, e.g. Redis restarted) is replaced."""

    def __init__(self, layer) -> None:
        import redis
        from channels_redis.pubsub import RedisPubSubLoopLayer

        self.layer = layer
        self.naming = RedisPubSubLoopLayer(**settings.CHANNEL_LAYERS["default"].get("CONFIG", {}),
                                           channel_layer=layer)
        self.pools = []
        for shard in self.naming._shards:
            options = dict(shard.host)
            address = options.pop("address")
            self.pools.append(redis.ConnectionPool.from_url(
                address, **options, socket_timeout=DIRECT_TIMEOUT, socket_connect_timeout=DIRECT_TIMEOUT,
                health_check_interval=0))
        self.local = threading.local()  # .connections: shard -> this thread's connection
        self.down_until = 0.0

    @classmethod
    def usable(cls, layer) -> bool:
        from channels_redis.pubsub import RedisPubSubChannelLayer

        config = settings.CHANNEL_LAYERS.get("default", {}).get("CONFIG", {})
        hosts = config.get("hosts") or []
        return (isinstance(layer, RedisPubSubChannelLayer) and bool(hosts)
                and all(isinstance(host, str) or (isinstance(host, dict) and "address" in host) for host in hosts))

    def prepare(self, group: str, message: dict) -> tuple[int, str, bytes]:
        """(shard, channel, serialized message): all of a publish but the write."""
        channel = self.naming._get_group_channel_name(group)
        return self.naming._shards.index(self.naming._get_shard(channel)), channel, self.layer.serialize(message)

    def publish(self, shard: int, channel: str, data: bytes, seq=None) -> None:
        if time.monotonic() < self.down_until:
            return
        for attempt in (1, 2):
            try:
                self._send(shard, channel, data)
                return
            except Exception:  # best effort: the step log stays the source of truth
                self._drop(shard)
                # The connection may have died since its last PUBLISH (Redis restarted):
                # once more on a new one, then pause.
                if attempt == 2:
                    self.down_until = time.monotonic() + COOL_DOWN
                    logger.warning("could not publish event %s to %s; live events paused for %g s",
                                   seq, channel, COOL_DOWN, exc_info=True)

    def _send(self, shard: int, channel: str, data: bytes) -> None:
        connections = self.local.__dict__.setdefault("connections", {})
        connection = connections.get(shard)
        if connection is None or _readable(connection):
            # New, or the server closed it (it sends nothing else on a connection whose
            # replies are off): a PUBLISH written there would be lost.
            self._drop(shard)
            connection = self.pools[shard].make_connection()
            connection.connect()
            connection.send_command("CLIENT", "REPLY", "OFF")
            connections[shard] = connection
        connection.send_packed_command(connection.pack_command("PUBLISH", channel, data))

    def _drop(self, shard: int) -> None:
        connection = self.local.__dict__.get("connections", {}).pop(shard, None)
        if connection is not None:
            connection.disconnect()


def _readable(connection) -> bool:
    poller = select.poll()
    poller.register(connection._sock, select.POLLIN)
    return bool(poller.poll(0))


_direct: tuple[int, Any, _Direct | None] | None = None  # (pid, layer, its direct publisher or None)


def _direct_for(layer) -> _Direct | None:
    global _direct
    current = _direct
    if current is None or current[0] != os.getpid() or current[1] is not layer:
        with _lock:
            current = _direct = (os.getpid(), layer, _Direct(layer) if _Direct.usable(layer) else None)
    return current[2]


@dataclass
class Outgoing:
    """An event made ready to publish: serialized for the direct path (``wire``)."""

    task_id: Any
    event: dict
    wire: tuple | None = None  # (_Direct, shard, channel, data)


def prepare(task_id: Any, event: dict) -> Outgoing:
    """``event`` ready to ``send``: the work of a publish but the write (the runner does it
    while the step it announces may still be committing). Never raises."""
    outgoing = Outgoing(task_id, event)
    try:
        layer = get_channel_layer()
        direct = _direct_for(layer) if layer is not None else None
        if direct is not None:
            outgoing.wire = (direct, *direct.prepare(group_name(task_id), {"type": "task.event", "event": event}))
    except Exception:
        logger.warning("could not prepare event %s of task %s", event.get("seq"), task_id, exc_info=True)
    return outgoing


def send(outgoing: Outgoing) -> None:
    """Send a prepared event to the task's group. Never raises: live updates are best
    effort; clients catch up from the step log (``?after=N``)."""
    event = outgoing.event
    try:
        if outgoing.wire is not None:
            direct, shard, channel, data = outgoing.wire
            direct.publish(shard, channel, data, event.get("seq"))
            return
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group_name(outgoing.task_id), {"type": "task.event", "event": event})
    except Exception:
        logger.warning("could not publish event %s of task %s", event.get("seq"), outgoing.task_id, exc_info=True)


def publish(task_id: Any, event: dict) -> None:
    """Send ``event`` to the task's group (see ``send``)."""
    send(prepare(task_id, event))


def step_event(task, step) -> dict:
    from tasks.presenters import step_to_dict, task_to_dict

    return {"type": "step", "seq": step.index, "task": task_to_dict(task), "step": step_to_dict(step)}


def status_event(task) -> dict:
    from tasks.presenters import task_to_dict

    return {"type": "status", "seq": task.step_count - 1, "task": task_to_dict(task), "step": None}
