"""The channel layer, counting connected live clients for /metrics.

Every live client (a task page's websocket, an SSE stream, a waiting ``/execute``) joins its
task's group ``task-<id>`` on connect and leaves it on disconnect; this layer adds the
member to / removes it from one Redis sorted set (score: when it joined), so the count is
the same from every process. A process killed without leaving its groups leaves members
behind: they are dropped once older than the layer's ``group_expiry`` (a day by default,
as channels_redis does for its own groups).
"""

from __future__ import annotations

import time

from channels_redis.pubsub import RedisPubSubChannelLayer

from observability import metrics

GROUP_EXPIRY = 86400


def _member(group: str, channel: str) -> str:
    return f"{group} {channel}"


class CountingPubSubChannelLayer(RedisPubSubChannelLayer):
    # RedisPubSubChannelLayer hands every method to its layer for the running event loop
    # through __getattr__; these two go the same way, then count.

    async def group_add(self, group, channel):
        await self.__getattr__("group_add")(group, channel)
        if group.startswith("task-"):
            await self._count(lambda client: client.zadd(metrics.LIVE_CLIENTS, {_member(group, channel): time.time()}))

    async def group_discard(self, group, channel):
        await self.__getattr__("group_discard")(group, channel)
        if group.startswith("task-"):
            await self._count(lambda client: client.zrem(metrics.LIVE_CLIENTS, _member(group, channel)))

    async def _count(self, change) -> None:
        from asgiref.sync import sync_to_async

        def apply() -> None:
            try:
                client = metrics.redis_client()
                change(client)
                client.zremrangebyscore(metrics.LIVE_CLIENTS, "-inf", time.time() - GROUP_EXPIRY)
            except Exception:  # noqa: BLE001 - the client is connected either way
                metrics._warn("metrics: could not count a live client")

        await sync_to_async(apply, thread_sensitive=False)()
