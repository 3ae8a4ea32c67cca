"""MCP servers' tools in the registry and the dispatcher: listing, enabling, calling, and
each kind of failure as a typed error (real SDK servers over stdio and HTTP on loopback)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from mcp_bridge.models import McpServer, McpTool
from mcp_bridge.services import mcp_server_refresh, mcp_servers_refresh_all
from tools.dispatch import ToolContext, dispatch
from tools.models import ToolSetting
from tools.registry import UnknownTool, all_tools, enabled_tools, get_tool

pytestmark = [pytest.mark.django_db, pytest.mark.slow]  # each stdio call starts the server
CONTEXT = ToolContext(owner_id=None, task_id="t", idempotency_key="t:7")


def call(name: str, arguments: dict | None = None):
    return dispatch(name=name, arguments=arguments or {}, context=CONTEXT)


def test_refresh_lists_tools_disabled_until_enabled(stdio_server, enable):
    result = mcp_server_refresh(server=stdio_server)
    assert result.ok and (result.listed, result.new) == (5, 5), str(result)
    names = {spec.name for spec in all_tools()}
    assert {"demo.echo", "demo.slow", "demo.crash", "demo.fail", "demo.broken"} <= names
    assert not [spec.name for spec in enabled_tools() if spec.name.startswith("demo.")]
    assert not ToolSetting.objects.get(name="demo.echo").enabled
    assert call("demo.echo", {"text": "hi"}).error_code == "disabled"

    enable("demo.echo")
    spec = get_tool("demo.echo")
    assert spec.parameters["required"] == ["text"] and spec.side_effects  # not marked read-only
    outcome = call("demo.echo", {"text": "hello"})
    assert outcome.ok, outcome.error
    # Side-effecting: the step's idempotency key reaches the server in _meta.
    assert outcome.result["echo"] == "hello" and outcome.result["idempotency_key"] == "t:7"


def test_arguments_are_validated_against_the_servers_schema(stdio_server, enable):
    mcp_server_refresh(server=stdio_server)
    enable("demo.echo")
    outcome = call("demo.echo", {"text": 5})
    assert (outcome.ok, outcome.error_code) == (False, "invalid_arguments")
    assert call("demo.echo", {"words": "x"}).error_code == "invalid_arguments"


def test_read_only_tools_carry_no_idempotency_key(stdio_server, enable):
    mcp_server_refresh(server=stdio_server)
    McpTool.objects.filter(name="echo").update(side_effects=False)
    enable("demo.echo")
    assert call("demo.echo", {"text": "x"}).result["idempotency_key"] is None


def test_failures_are_typed(stdio_server, enable):
    mcp_server_refresh(server=stdio_server)
    # Longer than a start of the server on a busy machine, far shorter than slow's 30 s.
    stdio_server.timeout_s = 8
    stdio_server.save()
    enable("demo.slow", "demo.crash", "demo.fail", "demo.broken")
    assert McpTool.objects.get(name="broken").schema_problem
    cases = {"demo.slow": ({"seconds": 30}, "timeout"), "demo.crash": ({}, "mcp_unavailable"),
             "demo.fail": ({}, "tool_error"), "demo.broken": ({"x": 1}, "mcp_invalid_schema")}
    for name, (arguments, code) in cases.items():
        outcome = call(name, arguments)
        assert (outcome.ok, outcome.error_code) == (False, code), (name, outcome)
        assert outcome.error.startswith(name)
    assert "out of stock" in call("demo.fail").error


def test_removed_tool_fails_clearly_and_comes_back(stdio_server, enable):
    mcp_server_refresh(server=stdio_server)
    enable("demo.echo", "demo.slow")
    stdio_server.command = "demo-minimal"
    stdio_server.save()
    result = mcp_server_refresh(server=stdio_server)
    assert (result.listed, result.removed) == (1, 4)
    outcome = call("demo.slow", {"seconds": 0})
    assert (outcome.ok, outcome.error_code) == (False, "tool_removed")
    assert call("demo.echo", {"text": "still here"}).ok
    stdio_server.command = "demo"
    stdio_server.save()
    mcp_server_refresh(server=stdio_server)
    assert call("demo.slow", {"seconds": 0}).ok  # listed again; the administrator's choice kept


def test_switched_off_server(stdio_server, enable):
    mcp_server_refresh(server=stdio_server)
    enable("demo.echo")
    McpServer.objects.filter(pk=stdio_server.pk).update(enabled=False)
    assert call("demo.echo", {"text": "x"}).error_code == "disabled"


def test_unreachable_servers_are_recorded_on_the_server(db, mcp_settings):
    from agentos.testing import free_port

    gone = McpServer.objects.create(name="gone", url=f"http://127.0.0.1:{free_port()}/mcp", timeout_s=5)
    missing = McpServer.objects.create(name="missing", transport="stdio", command="missing", timeout_s=5)
    for server in (gone, missing):
        result = mcp_server_refresh(server=server)
        server.refresh_from_db()
        assert (result.ok, result.error_code, server.last_error_code) == (False, "mcp_unavailable", "mcp_unavailable")
        assert server.last_error and server.last_refreshed_at


def test_private_addresses_are_refused_by_default(db, settings, http_demo):
    settings.MCP_ALLOW_PRIVATE_ADDRESSES = False
    server = McpServer.objects.create(name="local", url=http_demo, timeout_s=5)
    result = mcp_server_refresh(server=server)
    assert (result.ok, result.error_code) == (False, "mcp_not_allowed")


def test_http_server_with_headers_from_the_environment(db, mcp_settings, http_demo, enable, monkeypatch):
    server = McpServer.objects.create(name="web", url=http_demo, timeout_s=10,
                                      headers={"Authorization": "Bearer ${DEMO_MCP_TOKEN}"})
    server.full_clean()
    result = mcp_server_refresh(server=server)
    assert (result.ok, result.error_code) == (False, "mcp_not_configured")
    assert "DEMO_MCP_TOKEN" in result.error
    monkeypatch.setenv("DEMO_MCP_TOKEN", "s3cret")
    assert mcp_server_refresh(server=server).ok
    enable("web.echo", "web.crash")
    outcome = call("web.echo", {"text": "over http"})
    assert outcome.ok and outcome.result["echo"] == "over http"
    # Not an MCP endpoint: the server answers with a JSON-RPC error.
    wrong = McpServer.objects.create(name="wrong", url=http_demo.replace("/mcp", "/elsewhere"), timeout_s=10)
    assert mcp_server_refresh(server=wrong).error_code == "mcp_protocol_error"
    assert call("web.crash").error_code == "mcp_unavailable"  # the server process is gone
    assert call("web.echo", {"text": "x"}).error_code == "mcp_unavailable"


def test_secret_headers_must_come_from_the_environment(db, mcp_settings):
    server = McpServer(name="web", url="https://mcp.example.com/mcp", headers={"Authorization": "Bearer abc"})
    with pytest.raises(ValidationError, match="environment variable"):
        server.full_clean()
    with pytest.raises(ValidationError, match="MCP_STDIO_COMMANDS"):
        McpServer(name="cmd", transport="stdio", command="bash").full_clean()


def test_deleting_a_server_forgets_its_tools(stdio_server, enable):
    mcp_server_refresh(server=stdio_server)
    enable("demo.echo")
    stdio_server.delete()
    assert not ToolSetting.objects.filter(name__startswith="demo.").exists()
    with pytest.raises(UnknownTool):
        get_tool("demo.echo")


def test_an_http_call_connects_to_the_address_that_was_checked(db, mcp_settings, http_demo, monkeypatch):
    """DNS rebinding: the name resolves to the server when the URL is checked and to nothing
    afterwards; the call still reaches the checked address, and the server sees the name
    (its allowed hosts are the loopback names and this one)."""
    import socket

    port = int(http_demo.rsplit(":", 1)[1].split("/")[0])
    real = socket.getaddrinfo
    answers = []

    def rebinding(host, *args, **kwargs):
        if host != "mcp-rebind.test":
            return real(host, *args, **kwargs)
        answers.append(host)
        if len(answers) > 1:  # only the first answer points at the server
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    server = McpServer.objects.create(name="rebind", url=f"http://mcp-rebind.test:{port}/mcp", timeout_s=10)
    result = mcp_server_refresh(server=server)
    assert result.ok and result.listed >= 1, result.error
    assert len(answers) == 1  # the check; the connection resolved nothing


def test_schemas_whose_references_cannot_be_followed_are_flagged_at_refresh(db, mcp_settings, enable):
    server = McpServer.objects.create(name="refs", transport="stdio", command="demo-refs", timeout_s=15)
    result = mcp_server_refresh(server=server)
    assert result.ok and result.listed == 5, str(result)
    problems = dict(McpTool.objects.filter(server=server).values_list("name", "schema_problem"))
    assert problems["dangling"] == "the input schema's $ref '#/$defs/missing' points nowhere"
    assert problems["loop"] == "the input schema's $ref '#' loops back without going into the arguments"
    assert "$ref '#/$defs/a' loops back" in problems["deep_loop"]
    assert problems["tree"] == problems["echo"] == ""  # recursion that goes into the arguments is fine
    enable("refs.dangling", "refs.loop", "refs.deep_loop", "refs.tree")
    for name, arguments in (("refs.dangling", {"x": 1}), ("refs.loop", {}), ("refs.deep_loop", {"x": {}})):
        outcome = call(name, arguments)
        assert (outcome.ok, outcome.error_code) == (False, "mcp_invalid_schema"), (name, outcome)
    tree = {"children": [{"children": []}, {}]}
    outcome = call("refs.tree", tree)
    assert outcome.ok and outcome.result == tree, outcome
    assert call("refs.tree", {"children": [{"children": 3}]}).error_code == "invalid_arguments"


def test_a_stored_schema_that_cannot_be_followed_is_a_400_not_a_500(db, mcp_settings, auth_client):
    """A tool row written before its references were checked: the REST API refuses the call."""
    server = McpServer.objects.create(name="old", transport="stdio", command="demo", timeout_s=15)
    for name, schema in (("dangling", {"type": "object", "properties": {"x": {"$ref": "#/nope"}}}),
                         ("loop", {"type": "object", "$ref": "#"})):
        McpTool.objects.create(server=server, name=name, input_schema=schema, side_effects=False)
        ToolSetting.objects.create(name=f"old.{name}", enabled=True)
        response = auth_client.post(f"/api/v1/tools/old.{name}/invoke", {"arguments": {"x": 1}}, format="json")
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert error["code"] == "invalid_arguments" and "its input schema cannot be used" in error["message"]


def test_a_refresh_records_what_it_cannot_store_instead_of_crashing(db, mcp_settings, enable):
    """Tools holding NUL characters or NaN are skipped with a note; an error message holding
    a NUL character is stored without it; every server is refreshed, in name order."""
    odd = McpServer.objects.create(name="a-odd", transport="stdio", command="demo-unstorable", timeout_s=15)
    failing = McpServer.objects.create(name="b-failing", transport="stdio", command="demo-failing", timeout_s=15)
    McpServer.objects.create(name="c-demo", transport="stdio", command="demo", timeout_s=15)
    results = mcp_servers_refresh_all()
    assert [result.server for result in results] == ["a-odd", "b-failing", "c-demo"]
    first, second, third = results
    assert (first.ok, first.listed, first.new, first.skipped) == (True, 5, 1, 4), str(first)
    assert "4 skipped, see the server's last error" in str(first)
    assert set(McpTool.objects.filter(server=odd).values_list("name", flat=True)) == {"echo"}
    odd.refresh_from_db()
    assert odd.last_error_code == "unstorable_tool"
    assert "skipped tools with unusable names: nulname" in odd.last_error
    assert "nul_text (description: Null characters are not allowed.)" in odd.last_error
    assert "nul_schema (inputSchema.properties.x.description: Null characters are not allowed.)" in odd.last_error
    assert "nan_schema (inputSchema.properties.x.maximum: NaN is not a valid JSON number)" in odd.last_error
    enable("a-odd.echo")
    assert call("a-odd.echo", {"text": "still usable"}).ok

    failing.refresh_from_db()
    assert (second.ok, second.error_code, failing.last_error_code) == (False, "mcp_protocol_error",
                                                                        "mcp_protocol_error")
    assert failing.last_error == second.error == "the MCP server answered with error -32603: the catalogue is broken"
    assert third.ok and third.listed == 5


def test_a_tool_list_that_does_not_end_changes_nothing(stdio_server, enable):
    """After MAX_PAGES pages with a cursor still given, the list is incomplete: a refresh
    that took it for the whole would mark the tools not seen yet as removed."""
    from mcp_bridge.client import MAX_PAGES

    mcp_server_refresh(server=stdio_server)
    enable("demo.echo")
    stdio_server.command = "demo-endless"
    stdio_server.save()
    result = mcp_server_refresh(server=stdio_server)
    stdio_server.refresh_from_db()
    assert (result.ok, result.error_code, stdio_server.last_error_code) == (False, "mcp_protocol_error",
                                                                            "mcp_protocol_error")
    assert f"did not end after {MAX_PAGES} pages" in stdio_server.last_error
    assert not McpTool.objects.filter(removed_at__isnull=False).exists()
    assert not McpTool.objects.filter(name__startswith="page_").exists()
    stdio_server.command = "demo"
    stdio_server.save()
    assert call("demo.echo", {"text": "still here"}).ok
