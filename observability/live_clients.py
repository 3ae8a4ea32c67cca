"""Connected live clients, counted for /metrics.

Every live client (a task page's websocket, an SSE stream, a waiting ``/execute``) calls
:func:`joined` once it has joined its task's group and :func:`left` when it leaves; each
adds or removes one member of a Redis sorted set (score: when it joined), so the count is
the same from every process. A process killed without leaving leaves members behind: they
are dropped once older than ``STALE_SECONDS`` (a day, as channels_redis expires its own
group memberships).
"""

from __future__ import annotations

import time

from asgiref.sync import sync_to_async
from django.conf import settings

from observability import metrics

STALE_SECONDS = 86400


async def joined(group: str, channel: str) -> None:
    await _change(lambda client: client.zadd(metrics.LIVE_CLIENTS, {f"{group} {channel}": time.time()}))


async def left(group: str, channel: str) -> None:
    await _change(lambda client: client.zrem(metrics.LIVE_CLIENTS, f"{group} {channel}"))


async def _change(change) -> None:
    if not settings.METRICS_ENABLED:
        return

    def apply() -> None:
        try:
            client = metrics.redis_client()
            change(client)
            client.zremrangebyscore(metrics.LIVE_CLIENTS, "-inf", time.time() - STALE_SECONDS)
        except Exception:  # noqa: BLE001 - the client is connected either way
            metrics._warn("metrics: could not count a live client")

    await sync_to_async(apply, thread_sensitive=False)()
