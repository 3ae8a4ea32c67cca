"""The tools of registered MCP servers as ToolSpecs of the tool registry (tools/registry.py).

Only tools that have a ToolSetting row are offered; the row is created disabled when the
tool is first listed (mcp_bridge.services), so no MCP tool runs before an administrator
enables it. A tool that its server no longer lists, whose schema is invalid, or whose
server is switched off stays in the registry with a handler that fails with a typed error,
so an agent that still calls it gets a clear step error instead of a vanished tool.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Value
from django.db.models.functions import Concat

from mcp_bridge import client
from mcp_bridge.client import Endpoint, McpCallError
from tools.registry import ToolSpec

logger = logging.getLogger(__name__)
# The dispatcher's own limit is a little longer than the call's, so the call stops itself
# (closing its connection or process) before the dispatcher gives up on its thread.
GRACE_SECONDS = 2.0
PERMISSIVE_SCHEMA = {"type": "object"}
_SPECS: dict[tuple, ToolSpec] = {}


def endpoint_of(server) -> Endpoint:
    """The connection data of a ``McpServer`` row (stdio commands from MCP_STDIO_COMMANDS)."""
    argv: tuple[str, ...] = ()
    env: dict[str, str] = {}
    if server.transport == "stdio":
        entry = settings.MCP_STDIO_COMMANDS.get(server.command) or {}
        argv, env = tuple(entry.get("command") or ()), dict(entry.get("env") or {})
    return Endpoint(name=server.name, transport=server.transport, timeout_s=server.timeout_s, url=server.url,
                    headers=dict(server.headers or {}), argv=argv, env=env,
                    allow_private=settings.MCP_ALLOW_PRIVATE_ADDRESSES)


def _refusal(tool) -> McpCallError | None:
    if tool.removed_at is not None:
        return McpCallError(client.REMOVED, "the MCP server no longer offers this tool; refresh or remove it")
    if not tool.server.enabled:
        return McpCallError(client.DISABLED, f"the MCP server '{tool.server.name}' is switched off")
    if tool.schema_problem:
        return McpCallError(client.INVALID_SCHEMA, f"its input schema is invalid: {tool.schema_problem}")
    return None


def _call(arguments: dict, context: Any, *, endpoint: Endpoint, remote_name: str, side_effects: bool,
          refusal: McpCallError | None) -> Any:
    """The handler of every MCP tool. Its data were read when the spec was looked up, which
    the dispatcher does for each call, so a removed tool or a server switched off is seen."""
    if refusal is not None:
        raise refusal
    key = getattr(context, "idempotency_key", None) if side_effects else None
    return client.call_tool(endpoint, remote_name, arguments, idempotency_key=key)


def _spec(tool) -> ToolSpec:
    server = tool.server
    stamp = (tool.pk, tool.updated_at, tool.removed_at, tool.schema_problem, tool.side_effects,
             tool.requires_approval, server.pk, server.updated_at, server.enabled, server.name, server.timeout_s)
    spec = _SPECS.get(stamp)
    if spec is None:
        refusal = _refusal(tool)
        usable = not tool.schema_problem and tool.removed_at is None
        handler = partial(_call, endpoint=endpoint_of(server), remote_name=tool.name,
                          side_effects=tool.side_effects, refusal=refusal)
        spec = ToolSpec(name=tool.qualified_name, description=tool.description or f"{tool.name} (MCP)",
                        parameters=tool.input_schema if usable else PERMISSIVE_SCHEMA,
                        requires_approval=tool.requires_approval, side_effects=tool.side_effects,
                        timeout_s=server.timeout_s + GRACE_SECONDS, handler=handler)
        if len(_SPECS) > 2000:
            _SPECS.clear()
        _SPECS[stamp] = spec
    return spec


def _rows() -> list:
    from mcp_bridge.models import McpTool
    from tools.models import ToolSetting

    qualified = Concat("server__name", Value("."), "name")
    has_setting = Exists(ToolSetting.objects.filter(name=OuterRef("qualified")))
    return list(McpTool.objects.select_related("server").annotate(qualified=qualified)
                .filter(has_setting))


def mcp_tools_version_sql() -> str:
    """The registry's version of :func:`mcp_tool_specs` (tools/registry.py): a parameterless
    SQL expression whose value changes whenever what that query reads may have changed.

    A digest of every MCP tool's id, the row versions (``xmin``: PostgreSQL's id of the
    transaction that wrote the row, new on every INSERT and UPDATE, whatever the columns and
    whether or not ``updated_at`` was set) of the tool and of its server, and whether the tool
    has a ToolSetting row. A deleted tool or server removes its line. The enabled flags are
    not in it: the runner reads the disabled names itself on every slice."""
    from mcp_bridge.models import McpServer, McpTool
    from tools.models import ToolSetting

    tool, server, setting = McpTool._meta.db_table, McpServer._meta.db_table, ToolSetting._meta.db_table
    # Table names from the models; no values in this expression.
    return (
        "(SELECT md5(coalesce(string_agg(concat_ws(':', t.id, t.xmin, s.xmin, "  # noqa: S608
        f"EXISTS (SELECT 1 FROM {setting} ts WHERE ts.name = s.name || '.' || t.name)), ',' ORDER BY t.id), '')) "
        f"FROM {tool} t JOIN {server} s ON s.id = t.server_id)"
    )


def mcp_tool_specs() -> list[ToolSpec]:
    """The registry provider: one query. Without a database (a process that has none, tables
    not migrated yet) it raises, and the registry has no MCP tools for that lookup."""
    if connection.in_atomic_block:
        with transaction.atomic():  # a savepoint: a failed query must not break the caller's transaction
            rows = _rows()
    else:
        rows = _rows()
    return [_spec(tool) for tool in rows]
