"""A real run followed live: daphne, a Celery worker, an SSE client and a websocket client.

The SSE client disconnects mid-run and reconnects with Last-Event-ID; both clients must
see every step index exactly once, in order, and end with the final status.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect

from tasks.models import Task
from tasks.tests.api_support import parse_sse, token_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

QUERY = "Research the history of PostgreSQL, compute the average of 12, 15 and 30, and summarise both"
FINISHED = ("completed", "failed", "cancelled")


async def read_sse(http: httpx.AsyncClient, url: str, *, headers: dict, stop_after_steps: int | None = None,
                   timeout: float = 60) -> list[dict]:
    """Events of one SSE connection; with stop_after_steps, hang up after that many steps."""
    events: list[dict] = []
    buffer = ""
    async with asyncio.timeout(timeout), http.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for chunk in response.aiter_text():
            buffer += chunk
            *blocks, buffer = buffer.split("\n\n")
            for block in blocks:
                events.extend(parse_sse(block + "\n\n"))
            steps = [e for e in events if e["event"] == "step"]
            if stop_after_steps is not None and len(steps) >= stop_after_steps:
                break  # leaving the block closes the connection mid-run
            if events and events[-1]["event"] == "end":
                break
    return events


async def read_websocket(url: str, origin: str, timeout: float = 60) -> list[dict]:
    messages: list[dict] = []
    async with asyncio.timeout(timeout), connect(url, origin=origin) as ws:
        async for raw in ws:
            message = json.loads(raw)
            messages.append(message)
            if message["task"]["status"] in FINISHED:
                break
    return messages


async def follow(base: str, key: str) -> dict:
    headers = {"Authorization": f"Token {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        created = await http.post("/api/v1/tasks", json={"query": QUERY})
        assert created.status_code == 201, created.text
        task = created.json()
        ws_url = task["urls"]["websocket"] + f"?token={key}"
        websocket = asyncio.ensure_future(read_websocket(ws_url, origin=base))
        first = await read_sse(http, task["urls"]["stream"], headers={}, stop_after_steps=3)
        last_id = [e["id"] for e in first if e["event"] == "step"][-1]
        await asyncio.sleep(0.6)  # steps commit while this client is away
        second = await read_sse(http, task["urls"]["stream"], headers={"Last-Event-ID": str(last_id)})
        final = (await http.get(f"/api/v1/tasks/{task['task_id']}")).json()
        return {"task": task, "first": first, "second": second, "ws": await websocket, "final": final}


def test_sse_and_websocket_follow_a_real_run_without_gaps(agents_defaults, user, make_worker, live_daphne):
    make_worker(OFFLINE_LLM_LATENCY_MS=150)
    seen = asyncio.run(follow(live_daphne.extra["url"], token_for(user)))
    task = Task.objects.get(pk=seen["task"]["task_id"])
    assert task.status == "completed", task.error
    every_index = list(range(task.step_count))
    assert task.step_count >= 8

    # SSE: the first connection ended mid-run, the second resumed right after its last id.
    assert not any(e["event"] == "end" for e in seen["first"]), "the first connection should end mid-run"
    first_ids = [e["id"] for e in seen["first"] if e["event"] == "step"]
    second_ids = [e["id"] for e in seen["second"] if e["event"] == "step"]
    assert first_ids + second_ids == every_index
    assert seen["second"][-1]["event"] == "end"
    assert seen["second"][-1]["data"]["task"]["status"] == "completed"
    for event in seen["first"] + seen["second"]:
        if event["event"] == "step":
            assert event["data"]["step"]["index"] == event["id"] == event["data"]["seq"]

    # Websocket: snapshot steps, then live steps, each index once, in order.
    snapshot, *live_messages = seen["ws"]
    assert snapshot["type"] == "snapshot"
    ws_ids = [s["index"] for s in snapshot["steps"]] + [m["seq"] for m in live_messages if m["type"] == "step"]
    assert ws_ids == every_index
    assert seen["ws"][-1]["task"]["status"] == "completed"

    assert seen["final"]["status"] == "completed" and seen["final"]["current_step"] == task.step_count


def test_execute_waits_for_a_real_run(agents_defaults, user, make_worker, live_daphne):
    make_worker()
    response = httpx.post(f"{live_daphne.extra['url']}/api/v1/execute", json={"query": QUERY, "timeout": 60},
                          headers={"Authorization": f"Token {token_for(user)}"}, timeout=90)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["status"] == "completed" and body["session_id"] == body["task_id"]
    assert "19" in body["result"]  # the average of 12, 15 and 30, computed by a tool
    assert Task.objects.get(pk=body["task_id"]).status == "completed"
