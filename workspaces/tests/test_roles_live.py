"""Role matrix over the streaming interfaces: the websocket (connect, control messages) and
Server-Sent Events. Rows must be committed: consumers read from other threads."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient

from agentos.asgi import application
from tasks.tests.api_support import stream_db_connections, token_for  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stream_db_connections")]

WHO = ("viewer", "operator", "prompt_editor", "admin", "outsider", "staff")


async def websocket_pause(path: str) -> tuple[int | None, dict | None]:
    """(close code or None, the answer to a pause message when the socket stayed open)."""
    ws = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://testserver")])
    connected, _ = await ws.connect(timeout=5)
    assert connected
    first = await ws.receive_output(timeout=5)
    if first["type"] == "websocket.close":
        await ws.disconnect()
        return first.get("code"), None
    await ws.send_json_to({"action": "pause"})
    answer = await ws.receive_json_from(timeout=5)
    await ws.disconnect()
    return None, answer


@pytest.mark.parametrize("who", WHO)
def test_websocket(team, who):
    path = f"/ws/tasks/{team.task.pk}/?token={token_for(team.members[who])}"
    code, answer = async_to_sync(websocket_pause)(path)
    if who == "outsider":
        assert code == 4404
        return
    assert code is None
    if who == "viewer":
        assert answer["type"] == "error" and answer["error"]["code"] == "forbidden"
    else:
        assert answer["type"] == "ack" and answer["task"]["status"] == "paused"


@pytest.mark.parametrize("who", WHO)
def test_sse(team, who):
    key = token_for(team.members[who])

    async def status() -> int:
        response = await AsyncClient().get(f"/api/v1/tasks/{team.task.pk}/stream",
                                           headers={"Authorization": f"Token {key}"})
        if response.streaming:
            await response.streaming_content.__aiter__().aclose()
        return response.status_code

    assert async_to_sync(status)() == (404 if who == "outsider" else 200)


def _status_event(task) -> None:
    """Publish a status event of the task through the product's publisher, and wait until sent."""
    from tasks import live

    live.publish(task.pk, live.status_event(task))
    assert live.flush()


async def websocket_after_change(path: str, task, change) -> int | None:
    """Open the socket, apply ``change`` (a function run in a thread), publish an event of the
    task; the close code the socket then gets (None: it sent the event)."""
    from tasks.api.events import in_db_thread

    ws = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://testserver")])
    connected, _ = await ws.connect(timeout=5)
    assert connected
    assert (await ws.receive_json_from(timeout=5))["type"] == "snapshot"
    await in_db_thread(change)()  # on the stream pool, whose connections the fixture closes
    await in_db_thread(_status_event)(task)
    output = await ws.receive_output(timeout=5)
    await ws.disconnect()
    return output.get("code") if output["type"] == "websocket.close" else None


def _revoke(user):
    from rest_framework.authtoken.models import Token

    return lambda: Token.objects.filter(user=user).delete()


def _remove(team, user):
    from workspaces.models import Membership

    return lambda: Membership.objects.filter(workspace=team.workspace, user=user).delete()


@pytest.mark.parametrize("change, code", [("nothing", None), ("key revoked", 4401), ("user deactivated", 4401),
                                          ("removed from the workspace", 4404)])
def test_an_open_websocket_stops_when_its_caller_loses_access(team, settings, change, code):
    settings.LIVE_ACCESS_RECHECK_SECONDS = 0
    viewer = team.members["viewer"]
    changes = {"nothing": lambda: None, "key revoked": _revoke(viewer),
               "removed from the workspace": _remove(team, viewer),
               "user deactivated": lambda: type(viewer).objects.filter(pk=viewer.pk).update(is_active=False)}
    path = f"/ws/tasks/{team.task.pk}/?token={token_for(viewer)}"
    assert async_to_sync(websocket_after_change)(path, team.task, changes[change]) == code


@pytest.mark.parametrize("change, code", [("nothing", None), ("key revoked", "not_authenticated"),
                                          ("removed from the workspace", "not_found")])
def test_an_open_event_stream_ends_when_its_caller_loses_access(team, settings, change, code):
    from tasks.api.events import in_db_thread
    from tasks.tests.api_support import parse_sse

    settings.LIVE_ACCESS_RECHECK_SECONDS = 0
    viewer = team.members["viewer"]
    key = token_for(viewer)
    changes = {"nothing": lambda: None, "key revoked": _revoke(viewer),
               "removed from the workspace": _remove(team, viewer)}

    async def follow() -> list[dict]:
        import asyncio

        response = await AsyncClient().get(f"/api/v1/tasks/{team.task.pk}/stream",
                                           headers={"Authorization": f"Token {key}"})
        assert response.status_code == 200
        chunks = response.streaming_content.__aiter__()
        text = ""
        while "event: status" not in text:  # the snapshot's status event
            text += (await asyncio.wait_for(chunks.__anext__(), 5)).decode()
        await in_db_thread(changes[change])()
        await in_db_thread(_status_event)(team.task)
        text = (await asyncio.wait_for(chunks.__anext__(), 5)).decode()
        ended = False
        try:
            await asyncio.wait_for(chunks.__anext__(), 0.5)
        except StopAsyncIteration:
            ended = True
        except TimeoutError:
            pass
        await chunks.aclose()
        return [*parse_sse(text), {"ended": ended}]

    *events, end = async_to_sync(follow)()
    if code is None:
        assert [event["event"] for event in events] == ["status"] and not end["ended"]
    else:
        assert [event["event"] for event in events] == ["error"] and end["ended"]
        assert events[0]["data"]["error"]["code"] == code
