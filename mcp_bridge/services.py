"""Writes of the MCP client side: refreshing a server's tool list, switching its tools on/off.

``mcp_server_refresh`` lists the server's tools (outside any transaction), then in one
transaction: upserts a McpTool per listed tool (its schema checked), marks the ones no
longer listed as removed, and creates a *disabled* ToolSetting row for each new name. A
listed tool with an unusable name, or with text or numbers PostgreSQL cannot store (the
REST API's JSON guard, agentos.jsonguard), is skipped like one no longer listed, and named
in the server's ``last_error``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from agentos.jsonguard import JSONRejected, check_value
from mcp_bridge import client
from mcp_bridge.models import McpServer, McpTool
from mcp_bridge.registry import endpoint_of
from tools.models import ToolSetting

logger = logging.getLogger(__name__)
TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,69}$")  # <server (30)>.<tool> fits ToolSetting.name (100)
# Deeper than any schema the SDK's JSON parser lets through: only text and numbers are at issue here.
STORED_DEPTH = 256


@dataclass
class RefreshResult:
    server: str
    ok: bool
    listed: int = 0
    new: int = 0
    removed: int = 0
    error: str = ""
    error_code: str = ""
    skipped: int = 0

    def __str__(self) -> str:
        if not self.ok:
            return f"{self.server}: {self.error_code}: {self.error}"
        text = f"{self.server}: {self.listed} tools ({self.new} new, disabled until enabled; {self.removed} removed)"
        return f"{text}; {self.skipped} skipped, see the server's last error" if self.skipped else text


def schema_problem(schema) -> str:
    """Why ``schema`` cannot serve as a tool's input schema, or ''."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return "the input schema must be a JSON object schema with type 'object'"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        return f"not valid JSON Schema: {error.message}"[:300]
    # Only local references: the validator must never fetch a schema from elsewhere.
    if _remote_refs(schema):
        return "the input schema refers to other documents ($ref outside '#')"
    return _reference_problem(schema)[:300]


def _remote_refs(node) -> bool:
    if isinstance(node, dict):
        ref = node.get("$ref") or node.get("$dynamicRef")
        if isinstance(ref, str) and not ref.startswith("#"):
            return True
        return any(_remote_refs(value) for value in node.values())
    if isinstance(node, list):
        return any(_remote_refs(item) for item in node)
    return False


# Keywords whose subschemas apply to the value itself, not to a part of it: references
# that loop through these alone never reach into the arguments, and the validator recurses
# until Python's limit.
IN_PLACE = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas")


def _in_place(contents: dict) -> list[dict]:
    children = []
    for keyword in IN_PLACE:
        value = contents.get(keyword)
        if keyword == "dependentSchemas" and isinstance(value, dict):
            value = list(value.values())
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, dict):
                children.append(child)
    return children


def _reference_problem(schema: dict) -> str:
    """Why the validator could not follow the schema's references, or '': a ``$ref`` (or
    ``$dynamicRef``) that points nowhere (the validator raises when it meets it), or
    references that loop without going into the arguments (it recurses without end). Then a
    trial validation, for anything else the validator cannot do with the schema."""
    root = DRAFT202012.create_resource(schema)
    pending = [(root, Registry().resolver_with_root(root))]
    edges: dict[int, list[tuple[int, str]]] = {}  # in place: subschema -> (subschema, how)
    while pending:
        resource, resolver = pending.pop()
        contents = resource.contents
        if not isinstance(contents, dict) or id(contents) in edges:
            continue
        resolver = resolver.in_subresource(resource)
        edges[id(contents)] = [(id(child), "") for child in _in_place(contents)]
        for keyword in ("$ref", "$dynamicRef"):
            ref = contents.get(keyword)
            if not isinstance(ref, str):
                continue
            try:
                resolved = resolver.lookup(ref)
            except Unresolvable:
                return f"the input schema's {keyword} '{ref[:100]}' points nowhere"
            edges[id(contents)].append((id(resolved.contents), f"{keyword} '{ref[:100]}'"))
            pending.append((DRAFT202012.create_resource(resolved.contents), resolved.resolver))
        pending.extend((child, resolver) for child in resource.subresources())
    loop = _loop(edges)
    if loop:
        return f"the input schema's {loop} loops back without going into the arguments"
    try:
        Draft202012Validator(schema).is_valid({})
    except Exception as error:  # noqa: BLE001 - a schema the validator cannot use is reported, never raised
        return f"the input schema cannot be used: {type(error).__name__}: {error}"
    return ""


def _loop(edges: dict[int, list[tuple[int, str]]]) -> str:
    """A reference on a loop of in-place edges, or ''. Iterative depth-first search; a loop
    always has a reference on it (a schema without references is a tree)."""
    done: set[int] = set()
    for start in edges:
        if start in done:
            continue
        path = [(start, iter(edges[start]), "")]  # (subschema, its edges left, how it was reached)
        on_path = {start: 0}
        while path:
            node, children, _how = path[-1]
            child, how = next(children, (None, ""))
            if child is None:
                done.add(node)
                del on_path[node]
                path.pop()
            elif child in on_path:
                return next(label for label in [*(step[2] for step in path[on_path[child] + 1:]), how] if label)
            elif child not in done and child in edges:
                on_path[child] = len(path)
                path.append((child, iter(edges[child]), how))
    return ""


def _annotations(tool) -> dict:
    if tool.annotations is None:
        return {}
    return tool.annotations.model_dump(by_alias=True, exclude_none=True, mode="json")


def storable(text: str) -> str:
    """``text`` as PostgreSQL can store it: without NUL characters or lone surrogates (a
    remote server's error message or tool name may hold them)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _unstorable(remote) -> str:
    """Why the listed tool cannot be stored (agentos.jsonguard: NUL characters, lone
    surrogates, numbers that are not finite), or ''."""
    try:
        check_value({"description": remote.description or "", "inputSchema": remote.input_schema,
                     "annotations": _annotations(remote)}, max_depth=STORED_DEPTH)
    except JSONRejected as error:
        return f"{error.field}: {error.message}" if error.field else error.message
    return ""


def _record_failure(server: McpServer, now, code: str, message: str) -> RefreshResult:
    message = storable(message)
    McpServer.objects.filter(pk=server.pk).update(last_refreshed_at=now, last_error=message[:2000],
                                                  last_error_code=code)
    logger.warning("MCP server %s: tool list failed: %s: %s", server.name, code, message)
    return RefreshResult(server.name, ok=False, error=message, error_code=code)


def mcp_server_refresh(*, server: McpServer) -> RefreshResult:
    """List the server's tools now and record them (see the module docstring). A failure is
    stored on the server (last_error, last_error_code) and returned, never raised."""
    now = timezone.now()
    try:
        listed = client.list_tools(endpoint_of(server))
    except client.McpCallError as error:
        return _record_failure(server, now, error.code, str(error))
    result = RefreshResult(server.name, ok=True, listed=len(listed))
    bad_names = [tool.name for tool in listed if not TOOL_NAME.match(tool.name)]
    unstorable = {tool.name: problem for tool in listed if tool.name not in bad_names
                  and (problem := _unstorable(tool))}
    result.skipped = len(set(bad_names)) + len(unstorable)
    with transaction.atomic():
        existing = {tool.name: tool for tool in McpTool.objects.select_for_update().filter(server=server)}
        seen = set()
        for remote in listed:
            if remote.name in bad_names or remote.name in unstorable or remote.name in seen:
                continue
            seen.add(remote.name)
            result.new += _upsert(server, existing.get(remote.name), remote)
        gone = [tool.pk for name, tool in existing.items() if name not in seen and tool.removed_at is None]
        result.removed = McpTool.objects.filter(pk__in=gone).update(removed_at=now, updated_at=now)
        ToolSetting.objects.bulk_create([ToolSetting(name=f"{server.name}.{name}", enabled=False) for name in seen],
                                        ignore_conflicts=True)
        notes = []
        if bad_names:
            notes.append(f"skipped tools with unusable names: {', '.join(bad_names)[:500]}")
        if unstorable:
            named = "; ".join(f"{name} ({problem})" for name, problem in unstorable.items())
            notes.append(f"skipped tools with text or numbers that cannot be stored: {named[:1000]}")
        code = "unstorable_tool" if unstorable else "invalid_name" if bad_names else ""
        McpServer.objects.filter(pk=server.pk).update(last_refreshed_at=now, last_error=storable("\n".join(notes)),
                                                      last_error_code=code)
    return result


def _upsert(server: McpServer, row: McpTool | None, remote) -> int:
    annotations = _annotations(remote)
    fields = {"description": (remote.description or "")[:4000], "input_schema": remote.input_schema,
              "schema_problem": schema_problem(remote.input_schema), "annotations": annotations,
              "removed_at": None}
    if row is None:
        McpTool.objects.create(server=server, name=remote.name, **fields,
                               side_effects=annotations.get("readOnlyHint") is not True,
                               requires_approval=annotations.get("destructiveHint") is True)
        return 1
    if any(getattr(row, key) != value for key, value in fields.items()):
        for key, value in fields.items():
            setattr(row, key, value)
        row.save()
    return 0


def mcp_servers_refresh_all() -> list[RefreshResult]:
    """Refresh every enabled server, one after the other (each bounded by its timeout). A
    refresh that fails in an unforeseen way is logged and recorded as ``internal_error``;
    the next servers are still refreshed."""
    results = []
    for server in McpServer.objects.filter(enabled=True):
        try:
            results.append(mcp_server_refresh(server=server))
        except Exception as error:  # one server's failure must not stop the others'
            logger.exception("MCP server %s: refresh failed", server.name)
            message = f"the refresh failed: {type(error).__name__}: {error}"
            try:
                results.append(_record_failure(server, timezone.now(), "internal_error", message))
            except Exception:  # noqa: BLE001 - e.g. the database is down: the result still says so
                results.append(RefreshResult(server.name, ok=False, error=storable(message),
                                             error_code="internal_error"))
    return results


def mcp_tools_set_enabled(*, tools, enabled: bool) -> int:
    """Switch MCP tools on or off for agents (their ToolSetting rows)."""
    names = [tool.qualified_name for tool in tools]
    ToolSetting.objects.bulk_create([ToolSetting(name=name, enabled=enabled) for name in names],
                                    ignore_conflicts=True)
    return ToolSetting.objects.filter(name__in=names).update(enabled=enabled)


def mcp_server_forget_settings(*, server_name: str) -> int:
    """Drop the on/off rows of a deleted server's tools, so a new server of the same name
    starts with its tools disabled."""
    deleted, _ = ToolSetting.objects.filter(name__startswith=f"{server_name}.").delete()
    return deleted
