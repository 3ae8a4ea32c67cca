"""Changes to agents, tools, MCP servers and tools, and model prices made in the Django admin:
exactly one audit row per object changed, with who, what, and the state before and after;
a refused change writes none."""

from __future__ import annotations

import pytest
from django.urls import reverse

from workspaces.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def mark():
    """A callable returning the audit rows written since the fixture (or the last call)."""
    state = {"last": AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0}

    def new_rows() -> list[AuditEvent]:
        events = list(AuditEvent.objects.filter(id__gt=state["last"]).order_by("id"))
        if events:
            state["last"] = events[-1].pk
        return events
    return new_rows


def test_agent_create_change_delete(staff, staff_user, mark):
    from tasks.models import AgentSpec

    url = reverse("admin:tasks_agentspec_add")
    data = {"name": "auditor", "description": "Checks things.", "prompt_slug": "agent-research",
            "allowed_tools": '["calculator"]', "max_steps": "6", "enabled": "on"}
    assert staff.post(url, data).status_code == 302
    agent = AgentSpec.objects.get(name="auditor")
    [created] = mark()
    assert (created.action, created.target_type, created.target_id, created.actor, created.actor_id) == (
        "agent.create", "agent", str(agent.pk), "staff", staff_user.pk)
    assert created.before is None and created.after["max_steps"] == 6 and created.workspace_id is None

    change = reverse("admin:tasks_agentspec_change", args=[agent.pk])
    assert staff.post(change, {**data, "max_steps": "9"}).status_code == 302
    [changed] = mark()
    assert changed.action == "agent.change"
    assert (changed.before["max_steps"], changed.after["max_steps"]) == (6, 9)
    assert changed.before["allowed_tools"] == ["calculator"]

    refused = staff.post(change, {**data, "max_steps": "not a number"})
    assert refused.status_code == 200 and mark() == []

    assert staff.post(reverse("admin:tasks_agentspec_delete", args=[agent.pk]), {"post": "yes"}).status_code == 302
    [deleted] = mark()
    assert (deleted.action, deleted.target_id, deleted.after) == ("agent.delete", str(agent.pk), None)
    assert deleted.before["name"] == "auditor"


def test_switching_a_tool_in_the_list_writes_one_row(staff, mark):
    from tools.models import ToolSetting

    tool = ToolSetting.objects.create(name="calculator", enabled=False)
    other = ToolSetting.objects.create(name="web_search", enabled=True)
    response = staff.post(reverse("admin:tools_toolsetting_changelist"), {
        "form-TOTAL_FORMS": "2", "form-INITIAL_FORMS": "2", "_save": "Save",
        "form-0-id": tool.pk, "form-0-enabled": "on", "form-1-id": other.pk, "form-1-enabled": "on"})
    assert response.status_code == 302
    tool.refresh_from_db()
    assert tool.enabled
    [row] = mark()  # the unchanged row writes none
    assert (row.action, row.target_id) == ("tool.change", str(tool.pk))
    assert (row.before["enabled"], row.after["enabled"]) == (False, True)


def test_prices_and_a_bulk_delete(staff, mark):
    from observability.models import ModelPrice

    add = reverse("admin:observability_modelprice_add")
    for model in ("gpt-audit-a", "gpt-audit-b"):
        response = staff.post(add, {"provider": "openai", "model": model, "input_per_million": "1.5",
                                    "output_per_million": "6", "cached_input_per_million": "0.5", "note": ""})
        assert response.status_code == 302, response.content.decode()[:1000]
    rows = mark()
    assert [row.action for row in rows] == ["price.create", "price.create"]
    assert rows[0].after["input_per_million"] == "1.5"
    prices = list(ModelPrice.objects.filter(model__startswith="gpt-audit-").order_by("model"))
    response = staff.post(reverse("admin:observability_modelprice_changelist"),
                          {"action": "delete_selected", "_selected_action": [p.pk for p in prices], "post": "yes"})
    assert response.status_code == 302 and not ModelPrice.objects.filter(model__startswith="gpt-audit-").exists()
    rows = mark()
    assert sorted((row.action, row.target_id) for row in rows) == sorted(("price.delete", str(p.pk)) for p in prices)
    assert {row.before["model"] for row in rows} == {"gpt-audit-a", "gpt-audit-b"}


def test_mcp_server_with_its_tools_and_the_enable_action(staff, mark):
    from mcp_bridge.models import McpServer, McpTool

    url = reverse("admin:mcp_bridge_mcpserver_add")
    inline = {"tools-TOTAL_FORMS": "0", "tools-INITIAL_FORMS": "0"}
    response = staff.post(url, {"name": "files", "transport": "http", "url": "https://mcp.example.com/mcp?key=abc",
                                "headers": '{"Authorization": "Bearer ${FILES_TOKEN}", "X-Team": "blue-42"}',
                                "timeout_s": "30", "enabled": "on", **inline})
    assert response.status_code == 302, response.content.decode()[:2000]
    server = McpServer.objects.get(name="files")
    [created] = mark()
    assert created.action == "mcp_server.create"
    # What could be a secret typed in is not copied into the log.
    assert created.after["headers"] == {"Authorization": "Bearer ${FILES_TOKEN}", "X-Team": "[redacted]"}
    assert "abc" not in created.after["url"]

    read = McpTool.objects.create(server=server, name="read")
    write = McpTool.objects.create(server=server, name="write", side_effects=True)
    tools = reverse("admin:mcp_bridge_mcptool_changelist")
    assert staff.post(tools, {"action": "enable_tools", "_selected_action": [read.pk, write.pk]}).status_code == 302
    rows = mark()
    assert sorted((row.action, row.target_id) for row in rows) == [
        ("mcp_tool.enable_tools", str(read.pk)), ("mcp_tool.enable_tools", str(write.pk))]
    assert all(row.before["enabled"] is False and row.after["enabled"] is True for row in rows)

    # One save of the server, with one of its tools removed in the inline: one row.
    change = reverse("admin:mcp_bridge_mcpserver_change", args=[server.pk])
    response = staff.post(change, {
        "name": "files", "transport": "http", "url": "https://mcp.example.com/mcp",
        "headers": '{"Authorization": "Bearer ${FILES_TOKEN}"}', "timeout_s": "45", "enabled": "on",
        "tools-TOTAL_FORMS": "2", "tools-INITIAL_FORMS": "2",
        "tools-0-id": read.pk, "tools-0-server": server.pk,
        "tools-1-id": write.pk, "tools-1-server": server.pk, "tools-1-side_effects": "on", "tools-1-DELETE": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    [changed] = mark()
    assert changed.action == "mcp_server.change"
    assert (changed.before["timeout_s"], changed.after["timeout_s"]) == (30.0, 45.0)
    assert [tool["name"] for tool in changed.before["mcptool"]] == ["read", "write"]
    assert [tool["name"] for tool in changed.after["mcptool"]] == ["read"]


def test_admin_rows_are_outside_every_workspace_page(staff, team, mark):
    from tasks.models import AgentSpec

    agent = AgentSpec.objects.create(name="quiet", description="d", prompt_slug="agent-research")
    staff.post(reverse("admin:tasks_agentspec_delete", args=[agent.pk]), {"post": "yes"})
    [row] = mark()
    assert row.workspace_id is None
    from workspaces.selectors import audit_events

    assert not audit_events(workspace=team.workspace, filters={"action": "agent."}).exists()


def test_prompt_template_fields_are_audited_and_versions_only_by_their_service(staff, mark):
    from prompts.models import PromptTemplate
    from prompts.services import prompt_template_create, prompt_version_create

    template = prompt_template_create(slug="audited", description="Before.", required_variables=["name"],
                                      sample_variables={"name": "Ada"})
    prompt_version_create(template=template, body="Hi {{ name }}.", activate=True)
    mark()
    url = reverse("admin:prompts_prompttemplate_change", args=[template.pk])
    page = staff.get(url)
    data = {}
    form = page.context["adminform"].form
    for name in form.fields:
        value = form[name].value()
        if value not in (None, False):
            data[name] = value
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        for name, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{name}"] = value
        for version_form in formset.forms:
            for name in version_form.fields:
                value = version_form[name].value()
                if value not in (None, False):
                    data[version_form.add_prefix(name)] = value
    assert staff.post(url, data).status_code == 302
    assert mark() == []  # nothing changed: no row
    assert staff.post(url, {**data, "description": "After."}).status_code == 302
    [row] = mark()
    assert (row.action, row.target_type, row.before["description"], row.after["description"]) == (
        "prompt.template.change", "prompt_template", "Before.", "After.")
    assert PromptTemplate.objects.get(pk=template.pk).description == "After."
