"""GET /healthz: the state of every component the system needs to run a task, at once.

200 only when all are ok; 503 otherwise, naming what is down. Fast (a few milliseconds):
no probe waits on another process. Worker liveness comes from heartbeats the workers
write themselves (:class:`Heartbeat`, started from Celery's ``worker_ready`` signal in
agentos/celery.py): a Redis key per worker, rewritten every WORKER_HEARTBEAT_SECONDS with a
time-to-live of three intervals, so a worker that died disappears within that time and a
worker that shut down cleanly at once. Asking the workers (a broadcast ping) took ~2 s.

The channel layer is checked by a PING of its Redis; operators' deep check also sends a
message through it and waits for it (~100 ms). Anonymous callers see only ``ok`` or not
per component. Details (versions, errors,
worker names) are for operators: a staff user (session or ``Authorization: Token``), or
``?deep=1`` from the machine itself (a loopback address and no X-Forwarded-For header,
so a request relayed by a local reverse proxy does not count).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 0.5
HEARTBEAT_PREFIX = "agentos:health:worker:"
LOOPBACK = {"127.0.0.1", "::1"}


def _redis_client(url: str | None = None):
    import redis

    return redis.Redis.from_url(url or settings.CELERY_BROKER_URL, socket_timeout=PROBE_TIMEOUT,
                                socket_connect_timeout=PROBE_TIMEOUT)


_probe_clients: dict[str, object] = {}


def _probe_client(url: str):
    """One client (with its connection pool) per URL and process: a probe reuses a connection."""
    client = _probe_clients.get(url)
    if client is None:
        client = _probe_clients[url] = _redis_client(url)
    return client


# --- the workers' side -------------------------------------------------------------------

class Heartbeat:
    """A daemon thread that keeps ``agentos:health:worker:<name>`` alive while the worker runs."""

    def __init__(self, name: str, *, interval: float | None = None) -> None:
        self.name = name
        self.interval = interval or settings.WORKER_HEARTBEAT_SECONDS
        self.key = HEARTBEAT_PREFIX + name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def beat(self, client) -> None:
        value = json.dumps({"worker": self.name, "host": socket.gethostname(), "pid": os.getpid(), "at": time.time()})
        client.set(self.key, value, ex=max(1, round(self.interval * 3)))

    def _run(self) -> None:
        client = _redis_client()
        while not self._stop.is_set():
            try:
                self.beat(client)
            except Exception as error:  # noqa: BLE001 - Redis down: the key lapses, /healthz says so
                logger.warning("health heartbeat of %s not written: %s", self.name, error)
            self._stop.wait(self.interval)
        try:
            client.delete(self.key)  # a clean shutdown is visible at once, not after the TTL
        except Exception:  # noqa: BLE001 - best effort; the key expires anyway
            pass
        client.close()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


def live_workers() -> dict[str, dict]:
    """Name -> last heartbeat of every worker whose key has not expired."""
    client = _probe_client(settings.CELERY_BROKER_URL)
    keys = list(client.scan_iter(match=HEARTBEAT_PREFIX + "*", count=500))
    values = client.mget(keys) if keys else []
    workers = {}
    for key, value in zip(keys, values, strict=True):
        if value:
            name = key.decode().removeprefix(HEARTBEAT_PREFIX)
            workers[name] = json.loads(value)
    return workers


# --- the probes ----------------------------------------------------------------------------

def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    if row is None:
        return {"ok": False, "error": "pgvector extension is not installed (run migrate)"}
    return {"ok": True, "pgvector": row[0]}


def check_redis() -> dict:
    _probe_client(settings.CELERY_BROKER_URL).ping()
    return {"ok": True}


def check_channel_layer() -> dict:
    """The channel layer's Redis answers (a round trip of a message is ``?deep=1``'s: ~100 ms)."""
    from channels.layers import get_channel_layer

    if get_channel_layer() is None:
        return {"ok": False, "error": "no channel layer configured"}
    _probe_client(settings.CHANNEL_REDIS_URL).ping()
    return {"ok": True}


def check_channel_layer_round_trip() -> dict:
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
    workers = live_workers()
    if not workers:
        return {"ok": False, "error": "no Celery worker heartbeat (is a worker running?)"}
    return {"ok": True, "workers": sorted(workers)}


CHECKS: dict[str, Callable[[], dict]] = {
    "database": check_database,
    "redis": check_redis,
    "channel_layer": check_channel_layer,
    "worker": check_worker,
}


def run_checks(*, deep: bool = False) -> dict[str, dict]:
    checks = {**CHECKS, "channel_layer": check_channel_layer_round_trip} if deep else CHECKS
    results = {}
    for name, check in checks.items():
        try:
            results[name] = check()
        except Exception as error:  # noqa: BLE001 - any failure of a probe means "down"
            results[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    return results


def wants_details(request: HttpRequest) -> bool:
    """Operators: a staff user, or ?deep=1 asked on the machine itself."""
    if request.GET.get("deep") == "1" and request.META.get("REMOTE_ADDR") in LOOPBACK \
            and "HTTP_X_FORWARDED_FOR" not in request.META:
        return True
    return _staff_caller(request)


def _staff_caller(request: HttpRequest) -> bool:
    from tasks.api.auth import token_from_header, user_for_token

    key = token_from_header(request.headers.get("Authorization"))
    try:
        user = user_for_token(key) if key else request.user
    except Exception:  # noqa: BLE001 - the database is down: no one can be recognised
        return False
    return bool(user and user.is_authenticated and user.is_staff)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    details = wants_details(request)
    results = run_checks(deep=details)
    down = [name for name, result in results.items() if not result["ok"]]
    if not details:
        results = {name: {"ok": result["ok"]} for name, result in results.items()}
    body = {"status": "ok" if not down else "down", "down": down, "components": results}
    response = JsonResponse(body, status=200 if not down else 503)
    response["Cache-Control"] = "no-store"
    return response
