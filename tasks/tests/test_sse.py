"""Server-Sent Events view: replay, Last-Event-ID, live relay without gaps or repeats, auth."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.test import AsyncClient, override_settings

from tasks import live
from tasks.models import Task
from tasks.tests.api_support import (
    add_step,
    make_task,
    parse_sse,
    stream_db_connections,  # noqa: F401 (fixture)
    token_for,
)

# The view reads the database from pool threads, so rows must be committed.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stream_db_connections")]


def stream_path(task, query: str = "") -> str:
    return f"/api/v1/tasks/{task.pk}/stream" + (f"?{query}" if query else "")


async def read_events(response, *, until=None, timeout: float = 5.0) -> list[dict]:
    """Read the stream until it ends or ``until(events)`` holds; closes the stream."""
    iterator = response.streaming_content.__aiter__()
    text = ""
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(iterator.__anext__(), timeout)
            except StopAsyncIteration:
                break
            text += chunk.decode() if isinstance(chunk, bytes) else chunk
            if until is not None and until(parse_sse(text)):
                break
    finally:
        await iterator.aclose()
    return parse_sse(text)


def step_ids(events: list[dict]) -> list[int]:
    return [event["id"] for event in events if event["event"] == "step"]


class client_for:
    """An AsyncClient sending ``Authorization: Token <key>`` (per request: the client-wide
    ``headers=`` of AsyncClient does not reach ASGI requests)."""

    def __init__(self, key: str, **headers: str) -> None:
        self.client = AsyncClient()
        self.headers = {"Authorization": f"Token {key}", **headers}

    async def get(self, path: str):
        return await self.client.get(path, headers=self.headers)

    async def post(self, path: str):
        return await self.client.post(path, headers=self.headers)


def test_replays_a_finished_task_then_ends(user):
    task = make_task(user, status="completed", steps=3)
    key = token_for(user)

    async def scenario():
        response = await client_for(key).get(stream_path(task))
        assert response.status_code == 200
        assert response["Content-Type"] == "text/event-stream"
        assert response["Cache-Control"] == "no-cache"
        return await read_events(response)

    events = async_to_sync(scenario)()
    kinds = [event["event"] for event in events]
    assert kinds == ["retry", "status", "step", "step", "step", "end"]
    assert step_ids(events) == [0, 1, 2]
    step = events[2]["data"]
    assert step["type"] == "step" and step["seq"] == 0 and step["step"]["index"] == 0
    assert events[-1]["data"]["task"]["status"] == "completed"


@pytest.mark.parametrize(("headers", "query", "expected"), [
    ({"Last-Event-ID": "2"}, "", [3, 4]),
    ({}, "after=0", [1, 2, 3, 4]),
    ({"Last-Event-ID": "3"}, "after=0", [4]),  # the reconnect header wins over the original URL
    ({}, "after=-1", [0, 1, 2, 3, 4]),
    ({"Last-Event-ID": "4"}, "", []),
])
def test_resumes_after_last_event_id(user, headers, query, expected):
    task = make_task(user, status="failed", steps=5)
    key = token_for(user)

    async def scenario():
        response = await client_for(key, **headers).get(
            stream_path(task, query))
        return await read_events(response)

    events = async_to_sync(scenario)()
    assert step_ids(events) == expected
    assert events[-1]["event"] == "end"


def test_relays_live_steps_once_each_and_in_order(user):
    """Duplicates are dropped; a step whose publish was lost is read from the database."""
    task = make_task(user, status="running", steps=2)
    key = token_for(user)
    layer = get_channel_layer()

    def commit(index: int, status: str | None = None) -> dict:
        step = add_step(task, index)
        if status:
            Task.objects.filter(pk=task.pk).update(status=status)
        fresh = Task.objects.get(pk=task.pk)
        return live.step_event(fresh, step)

    def finish() -> dict:
        Task.objects.filter(pk=task.pk).update(status="completed", result="done")
        return live.status_event(Task.objects.get(pk=task.pk))

    async def send(event: dict) -> None:
        await layer.group_send(f"task-{task.pk}", {"type": "task.event", "event": event})

    async def scenario():
        response = await client_for(key).get(stream_path(task))
        iterator_events = []

        async def consume():
            iterator_events.extend(await read_events(response, timeout=10))

        consumer = asyncio.ensure_future(consume())
        await asyncio.sleep(0.5)  # connected and subscribed
        step1_again = await sync_to_async(lambda: live.step_event(Task.objects.get(pk=task.pk),
                                                                  task.steps.get(index=1)))()
        await send(step1_again)                               # a duplicate of a replayed step
        await send(await sync_to_async(commit)(2))            # the next step
        await sync_to_async(commit)(3)                        # committed, its publish "lost"
        step4 = await sync_to_async(commit)(4)
        await send(step4)                                     # arrives with a gap before it
        await send(step4)                                     # and again
        await send(await sync_to_async(finish)())
        await asyncio.wait_for(consumer, 10)
        return iterator_events

    events = async_to_sync(scenario)()
    assert step_ids(events) == [0, 1, 2, 3, 4]
    assert events[-1]["event"] == "end" and events[-1]["data"]["task"]["status"] == "completed"
    statuses = [event["data"]["task"]["status"] for event in events if event["event"] == "status"]
    assert statuses[0] == "running" and statuses[-1] == "completed"


@override_settings(SSE_HEARTBEAT_SECONDS=0.2)
def test_heartbeats_and_catches_up_when_idle(user):
    """With no event at all, a heartbeat comment goes out and the database is re-read."""
    task = make_task(user, status="running", steps=1)
    key = token_for(user)

    async def scenario():
        response = await client_for(key).get(stream_path(task))

        async def later():
            await asyncio.sleep(0.5)
            await sync_to_async(add_step)(task, 1)  # never published
            await sync_to_async(Task.objects.filter(pk=task.pk).update)(status="completed")

        writer = asyncio.ensure_future(later())
        events = await read_events(response, timeout=5)
        await writer
        return events

    events = async_to_sync(scenario)()
    assert any(event["comment"] == "heartbeat" for event in events)
    assert step_ids(events) == [0, 1]
    assert events[-1]["event"] == "end"


def test_authentication_choices(user, other_user, staff_user):
    task = make_task(user, status="completed", steps=1)
    keys = {"user": token_for(user), "other": token_for(other_user), "staff": token_for(staff_user)}

    async def status_of(client: AsyncClient, path: str) -> tuple[int, dict | list]:
        response = await client.get(path)
        if response.streaming:
            return response.status_code, await read_events(response)
        return response.status_code, response.json()

    async def scenario():
        results = {}
        results["anonymous"] = await status_of(AsyncClient(), stream_path(task))
        results["bad token"] = await status_of(client_for("nope"), stream_path(task))
        results["query token"] = await status_of(AsyncClient(), stream_path(task, f"token={keys['user']}"))
        results["other user"] = await status_of(client_for(keys["other"]), stream_path(task))
        results["staff"] = await status_of(client_for(keys["staff"]), stream_path(task))
        session = AsyncClient()
        await session.aforce_login(user)
        results["session"] = await status_of(session, stream_path(task))
        results["slash"] = await status_of(client_for(keys["user"]), stream_path(task) + "/")
        results["bad cursor"] = await status_of(client_for(keys["user"]), stream_path(task, "after=abc"))
        results["bad id"] = await status_of(client_for(keys["user"]), "/api/v1/tasks/not-a-uuid/stream")
        results["unknown id"] = await status_of(client_for(keys["user"]),
                                                "/api/v1/tasks/00000000-0000-0000-0000-000000000000/stream")
        results["post"] = (await client_for(keys["user"]).post(stream_path(task))).status_code
        return results

    results = async_to_sync(scenario)()
    assert results["anonymous"][0] == 401 and results["anonymous"][1]["error"]["code"] == "not_authenticated"
    assert results["bad token"][0] == 401
    assert results["other user"][0] == 404 and results["other user"][1]["error"]["code"] == "not_found"
    for name in ("query token", "staff", "session", "slash"):
        assert results[name][0] == 200 and step_ids(results[name][1]) == [0], name
    assert results["bad cursor"][0] == 400 and results["bad cursor"][1]["error"]["field"] == "after"
    assert results["bad id"][0] == 404 and results["unknown id"][0] == 404
    assert results["post"] == 405
