"""GET /healthz: the state of every component the system needs to run a task.

200 only when all are ok; 503 otherwise, naming what is down. Each probe has a short
timeout so a dead component makes the endpoint slow by at most a second or two.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

PROBE_TIMEOUT = 1.5


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    if row is None:
        return {"ok": False, "error": "pgvector extension is not installed (run migrate)"}
    return {"ok": True, "pgvector": row[0]}


def check_redis() -> dict:
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=PROBE_TIMEOUT,
                                  socket_connect_timeout=PROBE_TIMEOUT)
    try:
        client.ping()
    finally:
        client.close()
    return {"ok": True}


def check_channel_layer() -> dict:
    """Round-trip one message through the channel layer."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return {"ok": False, "error": "no channel layer configured"}

    async def round_trip() -> bool:
        import asyncio

        channel = await layer.new_channel()
        token = uuid.uuid4().hex
        await layer.send(channel, {"type": "health.ping", "token": token})
        message = await asyncio.wait_for(layer.receive(channel), PROBE_TIMEOUT)
        return message.get("token") == token

    ok = async_to_sync(round_trip)()
    return {"ok": ok} if ok else {"ok": False, "error": "message did not come back"}


def check_worker() -> dict:
    from agentos.celery import app

    replies = app.control.ping(timeout=PROBE_TIMEOUT) or []
    workers = sorted(name for reply in replies for name in reply)
    if not workers:
        return {"ok": False, "error": "no Celery worker answered"}
    return {"ok": True, "workers": workers}


CHECKS: dict[str, Callable[[], dict]] = {
    "database": check_database,
    "redis": check_redis,
    "channel_layer": check_channel_layer,
    "worker": check_worker,
}


def run_checks() -> dict[str, dict]:
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as error:  # noqa: BLE001 - any failure of a probe means "down"
            results[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    return results


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    results = run_checks()
    down = [name for name, result in results.items() if not result["ok"]]
    body = {"status": "ok" if not down else "down", "down": down, "components": results}
    return JsonResponse(body, status=200 if not down else 503)
