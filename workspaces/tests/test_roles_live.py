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
