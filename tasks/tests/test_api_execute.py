"""POST /api/v1/execute: the original entry point (validation, wait, timeout, 202 mode)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, override_settings

from tasks import live
from tasks.models import Task
from tasks.tests.api_support import (
    stream_db_connections,  # noqa: F401 (fixture)
    token_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stream_db_connections")]


@pytest.fixture(autouse=True)
def _purge_broker():
    """No worker runs in these tests: drop the run_task messages the creations sent."""
    yield
    from agentos.celery import app

    app.control.purge()


def post(key: str | None, body, *, path: str = "/api/v1/execute", content_type: str = "application/json",
         client: AsyncClient | None = None):
    headers = {"Authorization": f"Token {key}"} if key else {}
    data = body if isinstance(body, str) else json.dumps(body)

    async def call():
        return await (client or AsyncClient()).post(path, data=data, content_type=content_type, headers=headers)

    return async_to_sync(call)()


def later(seconds: float, action) -> threading.Thread:
    def run():
        time.sleep(seconds)
        action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def finish_newest(status: str = "completed", **fields) -> None:
    task = Task.objects.order_by("-created_at").first()
    Task.objects.filter(pk=task.pk).update(status=status, **fields)
    live.publish(task.pk, live.status_event(Task.objects.get(pk=task.pk)))


@pytest.mark.parametrize("path", ["/api/v1/execute", "/api/v1/execute/"])
def test_no_wait_returns_202_with_urls(user, path):
    response = post(token_for(user), {"query": "What is 6 * 7?", "wait": False}, path=path)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["success"] is False and body["status"] == "queued" and body["session_id"] == body["task_id"]
    assert set(body["urls"]) == {"self", "steps", "stream", "websocket"}
    task = Task.objects.get(pk=body["task_id"])
    assert task.owner == user and task.trigger == "api"


def test_waits_for_the_result(user):
    key = token_for(user)
    writer = later(0.5, lambda: finish_newest(result="42", progress=1.0))
    started = time.monotonic()
    response = post(key, {"query": "What is 6 * 7?", "timeout": 10})
    writer.join()
    assert response.status_code == 200, response.content
    body = response.json()
    assert body == {**body, "success": True, "status": "completed", "result": "42", "error": None}
    assert body["session_id"] == body["task_id"] == body["task"]["task_id"]
    assert 0.4 < time.monotonic() - started < 5


def test_stops_waiting_when_a_person_must_answer(user):
    key = token_for(user)
    writer = later(0.3, lambda: finish_newest("waiting_human", waiting_for={"reason": "question", "question": "?"}))
    response = post(key, {"query": "Ask me something", "timeout": 10})
    writer.join()
    assert response.status_code == 200
    assert response.json()["status"] == "waiting_human" and response.json()["success"] is False


def test_failed_task_is_not_a_success(user):
    key = token_for(user)
    writer = later(0.3, lambda: finish_newest("failed", error="step budget exhausted"))
    body = post(key, {"query": "q", "timeout": 10}).json()
    writer.join()
    assert body["success"] is False and body["status"] == "failed" and body["error"] == "step budget exhausted"


def test_timeout_returns_202_with_the_current_state(user):
    started = time.monotonic()
    response = post(token_for(user), {"query": "q", "timeout": 0.5})
    elapsed = time.monotonic() - started
    assert response.status_code == 202
    assert response.json()["status"] == "queued" and response.json()["success"] is False
    assert 0.5 <= elapsed < 3


@override_settings(EXECUTE_DEFAULT_TIMEOUT=0.3)
def test_default_timeout_comes_from_settings(user):
    assert post(token_for(user), {"query": "q"}).status_code == 202


@override_settings(EXECUTE_MAX_TIMEOUT=300)
@pytest.mark.parametrize(("body", "field"), [
    ({"query": "q", "timeout": 301}, "timeout"),
    ({"query": "q", "timeout": -1}, "timeout"),
    ({"query": "q", "timeout": "soon"}, "timeout"),
    ({"query": "q", "wait": "perhaps"}, "wait"),
    ({"query": ""}, "query"),
    ({}, "query"),
    ({"query": ["a"]}, "query"),
])
def test_validation(user, body, field):
    response = post(token_for(user), body)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert not Task.objects.exists()


def test_transport_errors(user):
    key = token_for(user)
    assert post(key, '{"query": ', content_type="application/json").status_code == 400
    assert post(key, "query=x", content_type="application/x-www-form-urlencoded").status_code == 415
    anonymous = post(None, {"query": "q"})
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "not_authenticated"

    async def get():
        return await AsyncClient().get("/api/v1/execute", headers={"Authorization": f"Token {key}"})

    assert async_to_sync(get)().status_code == 405
    assert not Task.objects.exists()


def test_session_needs_csrf(user):
    async def call():
        client = AsyncClient(enforce_csrf_checks=True)
        await client.aforce_login(user)
        return await client.post("/api/v1/execute", data={"query": "q", "wait": False},
                                 content_type="application/json")

    response = async_to_sync(call)()
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"


@pytest.mark.slow
def test_waiting_requests_hold_no_threads(user, live_daphne):
    """Sixty requests wait at once (no worker runs them); the server still answers at once."""
    import httpx

    key = token_for(user)

    async def scenario():
        headers = {"Authorization": f"Token {key}"}
        async with httpx.AsyncClient(base_url=live_daphne.extra["url"], headers=headers, timeout=30) as http:
            waits = [asyncio.ensure_future(http.post("/api/v1/execute", json={"query": f"q{i}", "timeout": 15}))
                     for i in range(60)]
            # Creating 60 tasks takes seconds here (each request opens a database connection).
            deadline = time.monotonic() + 12
            while (await http.get("/api/v1/tasks/?limit=1")).json()["count"] < 60 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            timings = []
            for _ in range(3):
                started = time.monotonic()
                listing = await http.get("/api/v1/tasks/?limit=1")
                timings.append(time.monotonic() - started)
            quick = min(timings)
            return listing, quick, await asyncio.gather(*waits)

    listing, quick, results = asyncio.run(scenario())
    assert listing.status_code == 200 and listing.json()["count"] == 60
    assert quick < 0.5, f"a plain GET took {quick:.2f}s while requests waited"
    assert [r.status_code for r in results] == [202] * 60
