"""/mcp against a live daphne server, driven by the SDK's own client over a real socket:
token authentication, the enabled tools, direct calls, run_task with progress, get_task."""

from __future__ import annotations

import json

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from rest_framework.authtoken.models import Token

from tools.models import ToolSetting

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def connect(url: str, key: str, mode: str) -> tuple[Client, httpx2.AsyncClient]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
    return Client(streamable_http_client(f"{url}/mcp", http_client=http), cache=None, mode=mode), http


async def session(url: str, key: str, work, mode: str):
    client, http = connect(url, key, mode)
    async with http, client:
        return await work(client)


def run(url: str, key: str, work, mode: str = "auto"):
    """``mode="legacy"``: the initialize handshake of clients on protocol versions before 2026."""
    return anyio.run(session, url, key, work, mode)


def post(url: str, key: str, body, *, within: float = 30) -> httpx.Response:
    """One JSON-RPC message sent as raw text (the SDK's client cannot send NaN, for one),
    answered in full within ``within`` seconds."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
               "Accept": "application/json, text/event-stream"}

    async def send() -> httpx.Response:
        with anyio.fail_after(within):
            async with httpx.AsyncClient(timeout=within) as http:
                return await http.post(f"{url}/mcp", content=body, headers=headers)

    return anyio.run(send)


def answer(response: httpx.Response) -> dict:
    """The JSON-RPC response in an answer (an event stream or a JSON body)."""
    assert response.status_code == 200, response.text
    if not response.headers["content-type"].startswith("text/event-stream"):
        return response.json()
    messages = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    return next(message for message in messages if "id" in message)


def call_body(name: str, arguments: str) -> str:
    return ('{"jsonrpc": "2.0", "id": 1, "method": "tools/call", '
            f'"params": {{"name": "{name}", "arguments": {arguments}}}}}')


def test_sdk_client_lists_calls_and_runs_tasks(agents_defaults, user, other_user, live_daphne, make_worker):
    make_worker()
    url = live_daphne.extra["url"]
    key = Token.objects.create(user=user).key
    ToolSetting.objects.filter(name="http_get").update(enabled=False)

    async def list_and_call(client: Client):
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        result = await client.call_tool("calculator", {"expression": "6 * 7"})
        invalid = await client.call_tool("calculator", {"expression": 42})
        missing = await client.call_tool("no_such_tool", {})
        return listed, result, invalid, missing

    listed, result, invalid, missing = run(url, key, list_and_call)
    assert {"run_task", "get_task", "calculator", "web_search"} <= set(listed)
    assert "http_get" not in listed and "ask_human" not in listed  # disabled; waits for a person
    assert listed["calculator"].input_schema["required"] == ["expression"]
    assert not result.is_error and result.structured_content["result"] == {"expression": "6 * 7", "result": 42}
    assert invalid.is_error and invalid.structured_content["error_code"] == "invalid_arguments"
    assert missing.is_error and missing.structured_content["error_code"] == "not_found"
    legacy = run(url, key, list_and_call, mode="legacy")
    assert set(legacy[0]) == set(listed) and legacy[1].structured_content["result"]["result"] == 42

    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async def run_task(client: Client):
        started = await client.call_tool("run_task", {"query": "What is 7 times 6?", "wait": 60},
                                         progress_callback=on_progress)
        again = await client.call_tool("get_task", {"task_id": started.structured_content["task_id"]})
        return started, again

    started, again = run(url, key, run_task)
    task = started.structured_content
    assert not started.is_error and task["status"] == "completed", task
    assert "42" in task["result"]
    assert len(progress) >= 3 and [p[0] for p in progress] == sorted({p[0] for p in progress})
    assert progress[-1][0] == task["current_step"] and any("tool" in (p[2] or "") for p in progress)
    assert again.structured_content["task_id"] == task["task_id"]
    assert again.structured_content["status"] == "completed"

    # Owner-scoped: another user's key does not see the task.
    other_key = Token.objects.create(user=other_user).key
    hidden = run(url, other_key, lambda client: client.call_tool("get_task", {"task_id": task["task_id"]}))
    assert hidden.is_error and hidden.structured_content["error_code"] == "not_found"


def test_mcp_needs_a_valid_token(db, live_daphne):
    url = f"{live_daphne.extra['url']}/mcp"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    for headers in ({}, {"Authorization": "Bearer not-a-key"}):
        response = httpx.post(url, json=body, headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"
        assert response.headers["www-authenticate"].startswith("Bearer")
    with pytest.raises(Exception):  # noqa: B017 - the SDK's client surfaces the 401 as its own error
        run(live_daphne.extra["url"], "not-a-key", lambda client: client.list_tools())


def test_a_viewer_token_may_not_run_tools(staff_user, live_daphne):
    """As POST /api/v1/tools/{name}/invoke: running a tool is acting, so a viewer is refused."""
    from workspaces.models import Workspace
    from workspaces.services import service_token_create

    url = live_daphne.extra["url"]
    team = Workspace.objects.create(name="Team", slug="team")
    _, viewer = service_token_create(actor=staff_user, workspace=team, name="read", role="viewer")
    _, operator = service_token_create(actor=staff_user, workspace=team, name="act", role="operator")

    async def calculate(client: Client):
        listed = {tool.name for tool in (await client.list_tools()).tools}
        return listed, await client.call_tool("calculator", {"expression": "6 * 7"})

    listed, refused = run(url, viewer, calculate)
    assert "calculator" in listed  # seeing the tools is reading
    assert refused.is_error and refused.structured_content["error_code"] == "forbidden", refused
    assert "viewer" in refused.structured_content["error"]
    _, allowed = run(url, operator, calculate)
    assert not allowed.is_error and allowed.structured_content["result"]["result"] == 42


def test_run_task_refuses_a_wait_that_is_not_a_finite_number(user, live_daphne):
    """The SDK parses NaN and Infinity; a NaN wait made the wait a loop that never slept."""
    from tasks.models import Task

    url, key = live_daphne.extra["url"], Token.objects.create(user=user).key
    for wait, code in (("NaN", "invalid_number"), ("Infinity", "invalid_number"), ("-Infinity", "invalid_number"),
                       ('"soon"', "invalid"), ("-1", "invalid")):
        result = answer(post(url, key, call_body("run_task", f'{{"query": "What is 6 * 7?", "wait": {wait}}}')))
        refusal = result["result"]["structuredContent"]
        assert result["result"]["isError"] and (refusal["error_code"], refusal["field"]) == (code, "wait"), wait
    assert not Task.objects.exists()  # refused before a task is created


def test_arguments_pass_the_rest_apis_json_guard(user, live_daphne):
    """What the REST API's parser refuses is refused here with the same code, naming the argument."""
    from tasks.models import Task

    url, key = live_daphne.extra["url"], Token.objects.create(user=user).key
    meta_key = ('{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "calculator", '
                '"arguments": {"expression": "1"}, "_meta": {"agentos/idempotency-key": "k\\u0000"}}}')
    cases = [
        (call_body("calculator", '{"expression": "6 *\\u0000 7"}'), "null_characters_not_allowed", "expression"),
        (call_body("calculator", '{"expression": "1", "n": [1, NaN]}'), "invalid_number", "n[1]"),
        (call_body("run_task", '{"query": "What is 6\\u0000 * 7?"}'), "null_characters_not_allowed", "query"),
        (call_body("get_task", '{"task_id": "\\u0000"}'), "null_characters_not_allowed", "task_id"),
        (meta_key, "null_characters_not_allowed", "_meta.agentos/idempotency-key"),
    ]
    for body, code, field in cases:
        result = answer(post(url, key, body))["result"]
        refusal = result["structuredContent"]
        assert result["isError"] and (refusal["error_code"], refusal.get("field")) == (code, field), (body, result)
    assert not Task.objects.exists()


def test_the_body_is_capped_as_in_the_rest_api(user, live_daphne, settings):
    url, key = live_daphne.extra["url"], Token.objects.create(user=user).key
    limit = settings.API_MAX_BODY_BYTES

    def listing(size: int) -> bytes:
        head, tail = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {"pad": "', b'"}}}'
        return head + b"x" * (size - len(head) - len(tail)) + tail

    async def in_pieces(data: bytes):  # sent chunked, without Content-Length
        for start in range(0, len(data), 65536):
            yield data[start:start + 65536]

    assert len(listing(limit)) == limit
    assert "calculator" in {tool["name"] for tool in answer(post(url, key, listing(limit)))["result"]["tools"]}
    for body in (listing(limit + 1), in_pieces(listing(limit + 1))):
        response = post(url, key, body)
        assert response.status_code == 413, response.text[:300]
        assert response.json()["error"]["code"] == "payload_too_large"
