"""tasks.live.publish: events reach the task's group through the channel layer, in the order
published, without the caller waiting; a layer that cannot be reached never raises."""

from __future__ import annotations

import asyncio
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from agentos.testing import free_port
from tasks import live


def received(task_id, send, count: int) -> list[dict]:
    """Subscribe to the task's group, call ``send()``, return the first ``count`` events."""

    async def scenario():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(live.group_name(task_id), channel)
        try:
            await asyncio.get_running_loop().run_in_executor(None, send)
            return [(await asyncio.wait_for(layer.receive(channel), 5))["event"] for _ in range(count)]
        finally:
            await layer.group_discard(live.group_name(task_id), channel)

    return async_to_sync(scenario)()


def event(seq: int) -> dict:
    return {"type": "step", "seq": seq, "task": {"status": "running"}, "step": {"index": seq, "kind": "llm"}}


def test_events_reach_group_subscribers_in_the_order_published():
    def send():
        for seq in range(1, 21):
            live.publish("t-order", event(seq))

    events = received("t-order", send, 20)
    assert [e["seq"] for e in events] == list(range(1, 21))
    assert events[0] == event(1)


def test_publish_returns_before_the_event_is_sent_and_flush_waits_for_it():
    def send():
        live.publish("t-flush", event(1))
        assert live.flush(5)

    assert [e["seq"] for e in received("t-flush", send, 1)] == [1]


def test_an_unreachable_layer_never_raises_nor_blocks_the_caller(settings):
    port = free_port()  # nothing listens there
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                           "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}/0"]}}}
    started = time.monotonic()
    for seq in range(3):
        live.publish("t-down", event(seq))
    assert time.monotonic() - started < 0.1, "publish only queues the event"
    assert live.flush(3 * live.SEND_TIMEOUT + 5), "failed sends are dropped, the publisher goes on"
