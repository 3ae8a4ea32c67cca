"""A task uses MCP tools end to end: a real Celery worker, the offline provider, the demo
MCP server started over stdio for each call; failing MCP tools are typed step errors and
the task goes on."""

from __future__ import annotations

import pytest

from mcp_bridge.models import McpServer, McpTool
from mcp_bridge.services import mcp_server_refresh
from mcp_bridge.tests.conftest import MCP_ENV
from tasks.models import AgentSpec
from tasks.services import task_create, task_respond
from tasks.tests.waiting import assert_contiguous, wait_status

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def agent(name: str, tools: list[str]) -> AgentSpec:
    research = AgentSpec.objects.get(name="research")
    return AgentSpec.objects.create(name=name, description=f"Uses {', '.join(tools)}.",
                                    prompt_slug=research.prompt_slug, allowed_tools=tools, max_steps=4)


def test_tasks_call_mcp_tools_and_go_on_after_typed_failures(agents_defaults, user, mcp_settings, enable,
                                                             make_worker):
    # Longer than a start of the server on a busy machine, far shorter than slow's 30 s.
    server = McpServer.objects.create(name="demo", transport="stdio", command="demo", timeout_s=8)
    assert mcp_server_refresh(server=server).ok
    gated = McpServer.objects.create(name="gated", transport="stdio", command="demo", timeout_s=8)
    assert mcp_server_refresh(server=gated).ok
    McpTool.objects.filter(server=gated, name="echo").update(requires_approval=True)
    enable("demo.echo", "demo.slow", "demo.crash", "demo.broken", "gated.echo")
    agent("echoer", ["demo.echo"])
    agent("breaker", ["demo.slow", "demo.crash", "demo.broken"])
    agent("approver", ["gated.echo"])
    make_worker(**MCP_ENV)

    echo = task_create(owner=user, query="Echo the words hello from AgentOS", options={"agents": ["echoer"]})
    flaky = task_create(owner=user, query="Sleep for seconds. Exit the server process. Check the broken schema.",
                        options={"agents": ["breaker"]})

    approval = task_create(owner=user, query="Echo the words gated hello", options={"agents": ["approver"]})

    wait_status(echo, "completed", "failed", timeout=90)
    assert echo.status == "completed", echo.error
    calls = [s for s in assert_contiguous(echo) if s.kind == "tool"]
    assert calls and calls[0].input["tool"] == "demo.echo" and calls[0].status == "ok"
    assert calls[0].output["result"]["echo"] == "Echo the words hello from AgentOS"
    # Visible on the step: the idempotency key the server was sent.
    assert calls[0].output["result"]["idempotency_key"] == calls[0].input["idempotency_key"]
    assert "hello from AgentOS" in echo.result

    wait_status(flaky, "completed", "failed", timeout=120)
    steps = assert_contiguous(flaky)
    codes = {s.input["tool"]: (s.output or {}).get("error_code") for s in steps if s.kind == "tool"}
    assert codes == {"demo.slow": "timeout", "demo.crash": "mcp_unavailable", "demo.broken": "mcp_invalid_schema"}
    errors = [s.error for s in steps if s.kind == "tool"]
    assert all(error and error.startswith("demo.") for error in errors), errors
    assert flaky.status == "completed" and [s.kind for s in steps][-2:] == ["synthesis", "result"]

    # A tool flagged requires_approval waits for a person, then runs through the same path.
    wait_status(approval, "waiting_human", "completed", "failed", timeout=90)
    assert approval.status == "waiting_human" and approval.waiting_for["tool_call"]["tool"] == "gated.echo"
    task_respond(task=approval, approve=True)
    wait_status(approval, "completed", "failed", timeout=90)
    calls = [s for s in assert_contiguous(approval) if s.kind == "tool"]
    assert [(c.input["tool"], c.status, c.input.get("approved")) for c in calls] == [("gated.echo", "ok", True)]
