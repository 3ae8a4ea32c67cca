"""The hostile-input table again, through a real daphne: what a client on the network sees,
and what daphne writes to its log (access lines, tracebacks)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def assert_error_shape(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body["error"]) == {"code", "message", "field"}
    return body["error"]


async def close_code(url: str, message: str | None = None) -> int | None:
    async with websockets.connect(url, max_size=None) as ws:
        if message is not None:
            await ws.recv()  # the snapshot
            await ws.send(message)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


def test_edge_through_daphne(live_daphne, user):
    from tasks.tests.api_support import make_task, token_for

    base = live_daphne.extra["url"]
    key = token_for(user)
    task = make_task(user, status="running")
    headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}
    with httpx.Client(base_url=base, timeout=30) as http:
        assert_error_shape(http.post("/api/v1/tasks/", content="[" * 1000 + "]" * 1000, headers=headers), 400)
        assert_error_shape(http.post("/api/v1/memory/", content='{"content": "x", "metadata": {"n": 1e400}}',
                                     headers=headers), 400)
        # Beyond DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB): 413 in the error shape, API and webhook.
        big = b'{"query": "' + b"x" * 3_000_000 + b'"}'
        assert assert_error_shape(http.post("/api/v1/tasks/", content=big, headers=headers), 413)["code"] == \
            "payload_too_large"
        assert_error_shape(http.post("/hooks/00000000-0000-0000-0000-000000000000", content=big,
                                     headers={"Content-Type": "application/json"}), 413)
        assert_error_shape(http.post("/api/v1/tasks/", content=b"--x--", headers={
            "Authorization": f"Token {key}", "Content-Type": "multipart/form-data"}), 415)
        assert_error_shape(http.get(f"/api/v1/tasks/{task.pk}/unknown", headers=headers), 404)
        # A token in the query string, sent to the stream of a finished-looking task.
        secret_path = f"/api/v1/tasks/{task.pk}/steps?token={key}"
        http.get(secret_path)

    ws_base = base.replace("http://", "ws://")
    for path in ("/ws/tasks/", "/ws/x/"):
        assert asyncio.run(close_code(ws_base + path)) == 4404
    deep = "[" * 1000 + "]" * 1000
    assert asyncio.run(close_code(f"{ws_base}/ws/tasks/{task.pk}/?token={key}", deep)) == 4400

    live_daphne.stop()
    log = live_daphne.log()
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
    assert key not in log, "the API key was written to the log"
    assert "token=[redacted]" in log
