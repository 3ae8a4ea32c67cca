"""The websocket Origin check: no Origin (a program) is admitted, a foreign Origin is refused."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client

from agentos.asgi import application
from tasks.tests.api_support import make_task, stream_db_connections, token_for  # noqa: F401 (fixture)

# The consumer reads the database from other threads, so rows must be committed.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stream_db_connections")]


def handshake(path: str, origin: str | None, cookie: str | None = None) -> tuple[bool, dict | None]:
    """(accepted, first message or close event) of a websocket handshake to ``path``."""
    headers = ([(b"origin", origin.encode())] if origin is not None else []) + (
        [(b"cookie", cookie.encode())] if cookie else [])

    async def scenario() -> tuple[bool, dict | None]:
        ws = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await ws.connect(timeout=5)
        if not connected:
            return False, None
        output = await ws.receive_output(timeout=5)
        await ws.disconnect()
        return True, output

    return async_to_sync(scenario)()


@pytest.fixture
def task_path(user):
    task = make_task(user, status="running", steps=1)
    return f"/ws/tasks/{task.pk}/"


def snapshot_of(output: dict | None) -> str | None:
    import json

    if output is None or output["type"] != "websocket.send":
        return None
    return json.loads(output["text"])["type"]


def test_a_client_without_origin_is_admitted_with_a_token(user, task_path):
    accepted, output = handshake(f"{task_path}?token={token_for(user)}", origin=None)
    assert accepted and snapshot_of(output) == "snapshot"


def test_a_client_without_origin_still_needs_credentials(task_path):
    accepted, output = handshake(task_path, origin=None)
    assert accepted and output == {"type": "websocket.close", "code": 4401}


@pytest.mark.parametrize("origin", ["http://testserver", "https://localhost:8443", "http://127.0.0.1:8000"])
def test_an_allowed_host_origin_is_admitted(user, task_path, origin):
    accepted, output = handshake(f"{task_path}?token={token_for(user)}", origin=origin)
    assert accepted and snapshot_of(output) == "snapshot"


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "", "http://testserver.evil.example"])
def test_a_foreign_origin_is_refused_even_with_a_token(user, task_path, origin):
    assert handshake(f"{task_path}?token={token_for(user)}", origin=origin) == (False, None)


def test_a_foreign_page_cannot_ride_the_session_cookie(user, task_path):
    browser = Client()
    browser.force_login(user)
    cookie = f"sessionid={browser.cookies['sessionid'].value}"
    assert handshake(task_path, origin="http://evil.example", cookie=cookie) == (False, None)
    accepted, output = handshake(task_path, origin="http://testserver", cookie=cookie)
    assert accepted and snapshot_of(output) == "snapshot"
