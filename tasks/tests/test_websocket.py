"""Websocket ws/tasks/<id>/: auth and ownership close codes, snapshot, live relay, control."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from agentos.asgi import application
from tasks import live
from tasks.models import Task
from tasks.tests.api_support import (
    add_step,
    make_task,
    stream_db_connections,  # noqa: F401 (fixture)
    token_for,
)

# Consumers read the database from other threads (and Channels closes old connections
# around its calls), so rows must be committed.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stream_db_connections")]

ORIGIN = (b"origin", b"http://testserver")


def communicator(path: str, *, cookie: str | None = None) -> WebsocketCommunicator:
    headers = [ORIGIN] + ([(b"cookie", cookie.encode())] if cookie else [])
    return WebsocketCommunicator(application, path, headers=headers)


async def close_code(ws: WebsocketCommunicator) -> int | None:
    """Connect and return the close code the server sends (None if it stays open)."""
    connected, _ = await ws.connect(timeout=5)
    assert connected
    output = await ws.receive_output(timeout=5)
    await ws.disconnect()
    return output.get("code") if output["type"] == "websocket.close" else None


def test_refuses_anonymous_bad_token_and_other_users(user, other_user):
    task = make_task(user, steps=1)
    other_key = token_for(other_user)

    async def scenario():
        return [
            await close_code(communicator(f"/ws/tasks/{task.pk}/")),
            await close_code(communicator(f"/ws/tasks/{task.pk}/?token=not-a-token")),
            await close_code(communicator(f"/ws/tasks/{task.pk}/?token={other_key}")),
            await close_code(communicator(f"/ws/tasks/not-a-uuid/?token={other_key}")),
        ]

    assert async_to_sync(scenario)() == [4401, 4401, 4404, 4404]


def test_snapshot_with_token_session_and_staff(user, staff_user):
    task = make_task(user, status="running", steps=3)
    key, staff_key = token_for(user), token_for(staff_user)
    browser = Client()
    browser.force_login(user)
    cookie = f"sessionid={browser.cookies['sessionid'].value}"

    async def snapshot(ws: WebsocketCommunicator) -> dict:
        connected, _ = await ws.connect(timeout=5)
        assert connected
        message = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return message

    async def scenario():
        return (await snapshot(communicator(f"/ws/tasks/{task.pk}/?token={key}")),
                await snapshot(communicator(f"/ws/tasks/{task.pk}?after=1", cookie=cookie)),
                await snapshot(communicator(f"/ws/tasks/{task.pk}/?token={staff_key}&after=2")))

    full, after_one, staff = async_to_sync(scenario)()
    assert full["type"] == "snapshot" and full["task"]["task_id"] == str(task.pk)
    assert full["task"]["status"] == "running"
    assert [step["index"] for step in full["steps"]] == [0, 1, 2]
    assert [step["index"] for step in after_one["steps"]] == [2]
    assert staff["steps"] == []


def test_bad_after_closes_4400(user):
    task = make_task(user)
    key = token_for(user)
    assert async_to_sync(close_code)(communicator(f"/ws/tasks/{task.pk}/?token={key}&after=x")) == 4400


def test_live_messages_have_no_gap_and_no_duplicate(user):
    task = make_task(user, status="running", steps=2)
    key = token_for(user)
    layer = get_channel_layer()

    def commit(index: int) -> dict:
        step = add_step(task, index)
        return live.step_event(Task.objects.get(pk=task.pk), step)

    def finish() -> dict:
        Task.objects.filter(pk=task.pk).update(status="completed", result="done")
        return live.status_event(Task.objects.get(pk=task.pk))

    async def send(event: dict) -> None:
        await layer.group_send(f"task-{task.pk}", {"type": "task.event", "event": event})

    async def scenario():
        ws = communicator(f"/ws/tasks/{task.pk}/?token={key}")
        await ws.connect(timeout=5)
        messages = [await ws.receive_json_from(timeout=5)]
        await send(await sync_to_async(lambda: live.step_event(task, task.steps.get(index=1)))())  # replayed
        await send(await sync_to_async(commit)(2))
        await sync_to_async(commit)(3)  # its publish is lost
        step4 = await sync_to_async(commit)(4)
        await send(step4)
        await send(step4)
        await send(await sync_to_async(finish)())
        while True:
            message = await ws.receive_json_from(timeout=5)
            messages.append(message)
            if message["type"] == "status" and message["task"]["status"] == "completed":
                break
        assert await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()
        return messages

    messages = async_to_sync(scenario)()
    assert messages[0]["type"] == "snapshot" and [s["index"] for s in messages[0]["steps"]] == [0, 1]
    live_steps = [m["seq"] for m in messages[1:] if m["type"] == "step"]
    assert live_steps == [2, 3, 4]
    assert all(m["step"]["index"] == m["seq"] for m in messages[1:] if m["type"] == "step")
    assert messages[-1] == {**messages[-1], "type": "status", "seq": 4}


def test_steps_committed_while_connecting_are_neither_lost_nor_repeated(user):
    """A writer commits and publishes steps as fast as it can while clients connect."""
    task = make_task(user, status="running")
    key = token_for(user)
    total = 40

    def writer() -> None:
        for index in range(total):
            step = add_step(task, index)
            live.publish(task.pk, live.step_event(Task.objects.get(pk=task.pk), step))

    async def follow(delay: float) -> list[int]:
        await asyncio.sleep(delay)
        ws = communicator(f"/ws/tasks/{task.pk}/?token={key}")
        await ws.connect(timeout=5)
        seen = [step["index"] for step in (await ws.receive_json_from(timeout=5))["steps"]]
        while not seen or seen[-1] < total - 1:
            message = await ws.receive_json_from(timeout=5)
            if message["type"] == "step":
                seen.append(message["seq"])
        await ws.disconnect()
        return seen

    async def scenario():
        clients = [asyncio.ensure_future(follow(delay)) for delay in (0.0, 0.05, 0.1, 0.2, 0.3)]
        await asyncio.sleep(0.05)
        await sync_to_async(writer, thread_sensitive=False)()
        return await asyncio.gather(*clients)

    for seen in async_to_sync(scenario)():
        assert seen == list(range(total))


def test_control_messages(user, other_user):
    task = make_task(user, status="queued")
    key = token_for(user)

    async def scenario():
        ws = communicator(f"/ws/tasks/{task.pk}/?token={key}")
        await ws.connect(timeout=5)
        await ws.receive_json_from(timeout=5)  # snapshot
        replies = []
        for message in ({"action": "pause"}, {"action": "pause"}, {"action": "resume"}, {"action": "fly"},
                        {"action": "respond"}, {"action": "cancel"}):
            await ws.send_json_to(message)
            while True:  # skip the live step/status events the action itself publishes
                reply = await ws.receive_json_from(timeout=5)
                if reply["type"] in ("ack", "error"):
                    replies.append(reply)
                    break
        await ws.send_to(text_data="{not json")
        reply = await ws.receive_json_from(timeout=5)
        while reply["type"] != "error":
            reply = await ws.receive_json_from(timeout=5)
        replies.append(reply)
        await ws.disconnect()
        return replies

    replies = async_to_sync(scenario)()
    assert [(r["type"], r["action"]) for r in replies] == [
        ("ack", "pause"), ("error", "pause"), ("ack", "resume"), ("error", "fly"), ("error", "respond"),
        ("ack", "cancel"), ("error", None)]
    assert replies[0]["task"]["status"] == "paused" and replies[5]["task"]["status"] == "cancelled"
    assert replies[1]["error"]["code"] == "conflict"
    assert replies[3]["error"]["field"] == "action"
    assert replies[4]["error"]["field"] == "answer"
    assert replies[6]["error"]["code"] == "parse_error"
