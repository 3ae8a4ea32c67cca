"""The MCP tools a slice offers come from the process's cache while nothing changed, and any
change committed by another process (another connection: the admin, a refresh, a shell) is
seen by the next slice. No MCP server is started: the rows are what the registry reads."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from mcp_bridge.models import McpServer, McpTool
from tasks.lookups import lookups_sql, parse_lookups
from tools.models import ToolSetting
from tools.registry import enabled_tools

pytestmark = pytest.mark.django_db(transaction=True)


def slice_lookups():
    """What the lease's statement reads for a slice (a stand-in ``leased`` row for the task)."""
    with connection.cursor() as cursor:
        cursor.execute(f"WITH leased AS (SELECT NULL::uuid AS id) SELECT ({lookups_sql()}) FROM leased")
        return parse_lookups(cursor.fetchone()[0])


def slice_tools() -> dict:
    """The enabled tools as a slice starts: the registry with the lookups' versions."""
    lookups = slice_lookups()
    return {spec.name: spec for spec in enabled_tools(lookups.disabled_tools, lookups.tool_versions)}


def elsewhere(sql: str, params: list | None = None) -> None:
    """A statement committed on a connection of its own, as another process would."""
    settings = connection.settings_dict
    with psycopg.connect(dbname=settings["NAME"], user=settings["USER"], password=settings["PASSWORD"],
                         host=settings["HOST"], port=settings["PORT"], autocommit=True) as other:
        other.execute(sql, params)


@pytest.fixture
def echo(db):
    server = McpServer.objects.create(name="demo", transport="stdio", command="demo", timeout_s=15)
    tool = McpTool.objects.create(server=server, name="echo", input_schema={"type": "object"})
    ToolSetting.objects.create(name="demo.echo", enabled=True)
    return tool


def test_unchanged_tools_cost_no_query(echo, django_assert_num_queries):
    assert "demo.echo" in slice_tools()
    lookups = slice_lookups()
    with django_assert_num_queries(0):
        names = {spec.name for spec in enabled_tools(lookups.disabled_tools, lookups.tool_versions)}
    assert "demo.echo" in names


def test_a_change_committed_elsewhere_is_seen_by_the_next_slice(echo):
    tools, setting = McpTool._meta.db_table, ToolSetting._meta.db_table
    assert not slice_tools()["demo.echo"].requires_approval

    # Flags changed without touching updated_at (a queryset update, a shell): still seen.
    elsewhere(f"UPDATE {tools} SET requires_approval = true WHERE id = %s", [echo.pk])
    assert slice_tools()["demo.echo"].requires_approval

    # Disabled by an administrator: not offered on the next slice.
    elsewhere(f"UPDATE {setting} SET enabled = false WHERE name = 'demo.echo'")
    assert "demo.echo" not in slice_tools()
    elsewhere(f"UPDATE {setting} SET enabled = true WHERE name = 'demo.echo'")
    assert "demo.echo" in slice_tools()

    # A new tool is offered once it has its on/off row, a deleted one is gone.
    McpTool.objects.create(server=echo.server, name="shout", input_schema={"type": "object"})
    assert "demo.shout" not in slice_tools()
    elsewhere(f"INSERT INTO {setting} (name, enabled, updated_at) VALUES ('demo.shout', true, now())")
    assert "demo.shout" in slice_tools()
    elsewhere(f"DELETE FROM {tools} WHERE name = 'echo'")
    assert set(slice_tools()) & {"demo.echo", "demo.shout"} == {"demo.shout"}


def test_a_server_switched_off_elsewhere_refuses_its_tools_on_the_next_slice(echo):
    assert slice_tools()["demo.echo"].parameters == {"type": "object"}
    elsewhere(f"UPDATE {McpServer._meta.db_table} SET enabled = false WHERE id = %s", [echo.server_id])
    spec = slice_tools()["demo.echo"]
    with pytest.raises(Exception, match="switched off"):
        spec.handler({}, None)
