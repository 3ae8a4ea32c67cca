"""The admin: register a server (only allowlisted commands), refresh on demand, enable tools;
the beat job; approval and side effects of MCP tools as the REST API sees them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mcp_bridge.jobs import refresh_tool_lists
from mcp_bridge.models import McpServer, McpTool
from tools.models import ToolSetting

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client, staff_user):
    client.force_login(staff_user)
    return client


INLINE = {"tools-TOTAL_FORMS": "0", "tools-INITIAL_FORMS": "0"}


def test_add_form_offers_only_allowlisted_commands(admin_client_, mcp_settings):
    url = reverse("admin:mcp_bridge_mcpserver_add")
    page = admin_client_.get(url).content.decode()
    assert 'value="demo"' in page and 'value="demo-minimal"' in page
    refused = admin_client_.post(url, {"name": "shell", "transport": "stdio", "command": "bash", "headers": "{}",
                                       "timeout_s": "30", "enabled": "on", **INLINE})
    assert refused.status_code == 200 and not McpServer.objects.exists()
    assert "Select a valid choice" in refused.content.decode()
    created = admin_client_.post(url, {"name": "demo", "transport": "stdio", "command": "demo", "headers": "{}",
                                       "timeout_s": "15", "enabled": "on", **INLINE})
    assert created.status_code == 302 and McpServer.objects.get().command == "demo"


def test_refresh_action_and_enable_action(admin_client_, stdio_server):
    changelist = reverse("admin:mcp_bridge_mcpserver_changelist")
    response = admin_client_.post(changelist, {"action": "refresh_tools", "_selected_action": [stdio_server.pk]},
                                  follow=True)
    assert "5 tools (5 new" in response.content.decode()
    echo = McpTool.objects.get(name="echo")
    assert not ToolSetting.objects.get(name="demo.echo").enabled
    tools = reverse("admin:mcp_bridge_mcptool_changelist")
    admin_client_.post(tools, {"action": "enable_tools", "_selected_action": [echo.pk]})
    assert ToolSetting.objects.get(name="demo.echo").enabled
    assert not ToolSetting.objects.get(name="demo.slow").enabled
    page = admin_client_.get(reverse("admin:mcp_bridge_mcpserver_change", args=[stdio_server.pk]))
    assert page.status_code == 200 and "echo" in page.content.decode()


def test_refresh_action_reports_tools_it_could_not_store(admin_client_, mcp_settings):
    server = McpServer.objects.create(name="odd", transport="stdio", command="demo-unstorable", timeout_s=15)
    changelist = reverse("admin:mcp_bridge_mcpserver_changelist")
    response = admin_client_.post(changelist, {"action": "refresh_tools", "_selected_action": [server.pk]},
                                  follow=True)
    assert response.status_code == 200
    assert "5 tools (1 new, disabled until enabled; 0 removed); 4 skipped, see the server&#x27;s last error" in (
        response.content.decode())
    page = admin_client_.get(reverse("admin:mcp_bridge_mcpserver_change", args=[server.pk])).content.decode()
    assert "unstorable_tool" in page and "nan_schema" in page


def test_beat_job_refreshes_enabled_servers(stdio_server, db):
    McpServer.objects.create(name="off", transport="stdio", command="demo", enabled=False)
    assert refresh_tool_lists() == ["demo: 5 tools (5 new, disabled until enabled; 0 removed)"]
    assert not McpTool.objects.filter(server__name="off").exists()


def test_tools_needing_approval_are_refused_to_direct_calls(stdio_server, user, auth_client, enable):
    from mcp_bridge.services import mcp_server_refresh

    mcp_server_refresh(server=stdio_server)
    enable("demo.echo")
    listed = {tool["name"]: tool for tool in auth_client.get("/api/v1/tools/").json()["results"]}
    assert listed["demo.echo"]["side_effects"] and "demo.slow" not in listed
    response = auth_client.post("/api/v1/tools/demo.echo/invoke", {"arguments": {"text": "hi"}}, format="json")
    assert response.status_code == 200 and response.json()["result"]["echo"] == "hi"
    McpTool.objects.filter(name="echo").update(requires_approval=True)
    # Inside a task, a call waits for a person's approval like any tool flagged so.
    from tasks.lookups import load_state
    from tasks.models import Task

    task = Task.objects.create(owner=user, query="q")
    assert "demo.echo" in load_state(task, {}).approval_tools
    response = auth_client.post("/api/v1/tools/demo.echo/invoke", {"arguments": {"text": "hi"}}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "approval_required"
