"""tasks.live.publish on the Redis pub/sub channel layer: a PUBLISH from the caller's thread,
received by channel-layer subscribers as group_send would deliver it; best effort when
Redis is gone or a connection died."""

from __future__ import annotations

import asyncio
import threading
import time
from urllib.parse import urlsplit

import pytest
import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from agentos.testing import free_port
from tasks import live


def received(task_id, send, count: int) -> list[dict]:
    """Subscribe to the task's group, call ``send()``, return the first ``count`` events."""

    async def scenario():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(live.group_name(task_id), channel)
        try:
            await asyncio.sleep(0.1)  # the SUBSCRIBE reaches Redis
            await asyncio.get_running_loop().run_in_executor(None, send)
            return [(await asyncio.wait_for(layer.receive(channel), 5))["event"] for _ in range(count)]
        finally:
            await layer.group_discard(live.group_name(task_id), channel)

    return async_to_sync(scenario)()


def event(seq: int) -> dict:
    return {"type": "step", "seq": seq, "task": {"status": "running"}, "step": {"index": seq, "kind": "llm"}}


def direct() -> live._Direct:
    publisher = live._direct_for(get_channel_layer())
    assert publisher is not None, "the configured pub/sub layer should be published to directly"
    return publisher


def test_events_reach_group_subscribers_in_order_without_a_background_thread():
    def send():
        for seq in range(1, 6):
            live.publish("t-order", event(seq))

    events = received("t-order", send, 5)
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert events[0] == event(1)
    assert "live-publish" not in {thread.name for thread in threading.enumerate()}


def test_a_connection_killed_by_the_server_is_replaced_and_the_event_still_arrives():
    publisher = direct()
    live.publish("t-killed", event(1))  # opens this thread's connection
    connection = publisher.local.connections[0]
    host, port = connection._sock.getsockname()[:2]
    admin = redis.Redis.from_url(settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0])
    assert admin.client_kill(f"{host}:{port}")

    events = received("t-killed", lambda: live.publish("t-killed", event(2)), 1)
    assert [e["seq"] for e in events] == [2]
    assert publisher.down_until < time.monotonic()


def test_redis_unreachable_never_raises_and_pauses_publishing(settings):
    port = free_port()  # nothing listens there
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                           "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}/0"]}}}
    layer = type(get_channel_layer())(hosts=[f"redis://127.0.0.1:{port}/0"])
    publisher = live._Direct(layer)
    attempts = []
    make = publisher.pools[0].make_connection
    publisher.pools[0].make_connection = lambda: attempts.append(1) or make()

    started = time.monotonic()
    publisher.publish(*publisher.prepare("t-down", {"type": "task.event", "event": event(1)}))
    assert time.monotonic() - started < 2 * live.DIRECT_TIMEOUT + 0.5
    assert len(attempts) == 2  # the connection, then once more on a new one
    assert publisher.down_until > time.monotonic()
    publisher.publish(*publisher.prepare("t-down", {"type": "task.event", "event": event(2)}))
    assert len(attempts) == 2  # paused: no new attempt during the cool-down


def test_hosts_without_an_address_are_published_with_group_send(settings):
    url = urlsplit(settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0])
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                           "CONFIG": {"hosts": [(url.hostname, url.port)]}}}
    assert live._direct_for(get_channel_layer()) is None

    def send():
        for seq in (1, 2):
            live.publish("t-general", event(seq))

    assert [e["seq"] for e in received("t-general", send, 2)] == [1, 2]


@pytest.mark.parametrize("config", [
    {"hosts": [("127.0.0.1", 6379)]},
    {"hosts": [{"sentinels": [("127.0.0.1", 26379)], "master_name": "m"}]},
])
def test_hosts_without_an_address_use_the_general_path(settings, config):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                           "CONFIG": config}}
    assert not live._Direct.usable(get_channel_layer())


def test_a_prepared_event_goes_out_only_when_sent():
    def send():
        first, second = live.prepare("t-prepared", event(1)), live.prepare("t-prepared", event(2))
        assert first.wire is not None  # serialized for the direct path
        time.sleep(0.2)  # nothing was written yet: a subscriber receives nothing meanwhile
        live.send(second)
        live.send(first)

    events = received("t-prepared", send, 2)
    # In the order sent, not prepared; equal to what was prepared.
    assert [e["seq"] for e in events] == [2, 1]
    assert events[1] == event(1)
