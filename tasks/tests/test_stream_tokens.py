"""Stream tokens (POST /tasks/{id}/stream-token) and API key rotation from the account page."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from rest_framework.test import APIClient

from agentos.asgi import application
from tasks.tests.api_support import (
    make_task,
    stream_db_connections,  # noqa: F401 (fixture)
    token_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stream_db_connections")]


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def stream_token(user, task) -> dict:
    response = client_for(user).post(f"/api/v1/tasks/{task.pk}/stream-token")
    assert response.status_code == 200, response.content
    return response.json()


def sse_status(path: str) -> int:
    response = APIClient().get(path)
    if getattr(response, "streaming", False):
        response.close()
    return response.status_code


def ws_close_code(path: str) -> int | None:
    async def scenario():
        ws = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://testserver")])
        connected, _ = await ws.connect(timeout=5)
        assert connected
        output = await ws.receive_output(timeout=5)
        await ws.disconnect()
        return output.get("code") if output["type"] == "websocket.close" else None

    return async_to_sync(scenario)()


def test_a_stream_token_opens_that_tasks_stream_and_websocket_only(user):
    task = make_task(user, status="completed")
    other_task = make_task(user, status="completed")
    body = stream_token(user, task)
    token = body["token"]
    assert body["expires_in"] == 300 and body["stream"].endswith(f"/stream?token={token}")
    assert token != token_for(user)
    assert sse_status(f"/api/v1/tasks/{task.pk}/stream?token={token}") == 200
    assert ws_close_code(f"/ws/tasks/{task.pk}/?token={token}") is None  # the snapshot, not a close
    # Another task of the same user, the REST API, a tampered token: refused.
    assert sse_status(f"/api/v1/tasks/{other_task.pk}/stream?token={token}") == 401
    assert ws_close_code(f"/ws/tasks/{other_task.pk}/?token={token}") == 4401
    rest = APIClient()
    rest.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert rest.get(f"/api/v1/tasks/{task.pk}/").status_code == 401
    assert sse_status(f"/api/v1/tasks/{task.pk}/stream?token={token[:-2]}xx") == 401


def test_a_stream_token_expires(user):
    task = make_task(user, status="completed")
    token = stream_token(user, task)["token"]
    with override_settings(STREAM_TOKEN_SECONDS=-1):
        assert sse_status(f"/api/v1/tasks/{task.pk}/stream?token={token}") == 401
        assert ws_close_code(f"/ws/tasks/{task.pk}/?token={token}") == 4401


def test_stream_tokens_only_for_ones_own_tasks(user, other_user):
    task = make_task(user)
    response = client_for(other_user).post(f"/api/v1/tasks/{task.pk}/stream-token")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert APIClient().post(f"/api/v1/tasks/{task.pk}/stream-token").status_code == 401


def test_a_deactivated_user_s_stream_token_stops_working(user):
    task = make_task(user, status="completed")
    token = stream_token(user, task)["token"]
    user.is_active = False
    user.save()
    assert sse_status(f"/api/v1/tasks/{task.pk}/stream?token={token}") == 401


# --- key rotation ---------------------------------------------------------------------------

def test_the_account_page_shows_the_key_and_rotates_it(client, user):
    old = token_for(user)
    client.force_login(user)
    page = client.get("/account/")
    assert page.status_code == 200 and old in page.content.decode()
    assert page["Cache-Control"] == "no-store"
    assert client.post("/account/rotate-key").status_code == 302
    from rest_framework.authtoken.models import Token

    new = Token.objects.get(user=user).key
    assert new != old and new in client.get("/account/").content.decode()
    stale = APIClient()
    stale.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    assert stale.get("/api/v1/tasks/").status_code == 401
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Token {new}")
    assert fresh.get("/api/v1/tasks/").status_code == 200


def test_rotation_needs_a_signed_in_post(client, user):
    from rest_framework.authtoken.models import Token

    old = token_for(user)
    assert client.post("/account/rotate-key").status_code == 302  # to the login page
    client.force_login(user)
    assert client.get("/account/rotate-key").status_code == 405
    assert Token.objects.get(user=user).key == old


def test_rotation_is_csrf_protected(user):
    from django.test import Client
    from rest_framework.authtoken.models import Token

    old = token_for(user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post("/account/rotate-key").status_code == 403
    assert Token.objects.get(user=user).key == old
