"""AgentOS as an MCP server: the enabled tools, ``run_task`` and ``get_task``, per user.

A low-level SDK ``Server`` (the tools are data from the registry, so their schemas are
served exactly as the registry has them). Every handler reads the user that
:mod:`mcp_bridge.asgi` authenticated from the HTTP request, and applies the REST API's
rules: a tool is listed and callable when it is enabled, does not wait for a person, and
(when it needs approval) only for staff; calling one (or starting a task) needs the role
operator or higher in the user's default workspace, as in the REST API; tasks are the
user's own (staff see all).
Tool calls go through ``tools.dispatch.dispatch`` like everywhere else.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from mcp.server import Server, ServerRequestContext
from mcp.types import CallToolRequestParams, CallToolResult, ListToolsResult, PaginatedRequestParams, TextContent, Tool

from agentos.api import ApplicationError
from agentos.jsonguard import JSONRejected, check_value
from mcp_bridge.client import IDEMPOTENCY_META_KEY
from mcp_bridge.tasks_bridge import DEFAULT_WAIT
from tasks.api.events import in_db_thread

USER_SCOPE_KEY = "agentos.user"
RUN_TASK, GET_TASK = "run_task", "get_task"
# Tool calls wait up to their timeout (MCP tools: tens of seconds), so they get threads of
# their own: the live streams' small database pool (in_db_thread) must never wait behind them.
TOOL_THREADS = 8
_tool_executor = ThreadPoolExecutor(max_workers=TOOL_THREADS, thread_name_prefix="mcp-tool")


def task_tools() -> list[Tool]:
    return [
        Tool(name=RUN_TASK, title="Run an AgentOS task",
             description="Start a task that plans, runs agents with tools and answers `query`. Waits up to `wait` "
                         "seconds (progress notifications while it runs) and returns the task; a task still running "
                         "then can be followed with get_task.",
             input_schema={"type": "object", "additionalProperties": False, "required": ["query"], "properties": {
                 "query": {"type": "string", "minLength": 1, "maxLength": settings.QUERY_MAX_LENGTH},
                 "wait": {"type": "number", "minimum": 0, "maximum": settings.MCP_RUN_TASK_MAX_WAIT,
                          "description": f"Seconds to wait for the result (default {DEFAULT_WAIT:g})."}}}),
        Tool(name=GET_TASK, title="Get an AgentOS task",
             description="The task's status, progress, intermediate results, result and error.",
             input_schema={"type": "object", "additionalProperties": False, "required": ["task_id"],
                           "properties": {"task_id": {"type": "string", "description": "The task_id run_task gave."}}}),
    ]


def _user(ctx: ServerRequestContext) -> Any:
    request = ctx.request
    user = request.scope.get(USER_SCOPE_KEY) if request is not None else None
    if user is None:  # mcp_bridge.asgi authenticates every request before it gets here
        raise PermissionError("not authenticated")
    return user


def listable_specs(user) -> list:
    from tools.registry import enabled_tools

    reserved = {RUN_TASK, GET_TASK}
    return [spec for spec in enabled_tools() if spec.name not in reserved and not spec.waits_for_human
            and (user.is_staff or not spec.requires_approval)]


def _result(body: dict, *, error: bool = False) -> CallToolResult:
    text = json.dumps(body, default=str, ensure_ascii=False)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=body, is_error=error)


def _refusal(error: ApplicationError) -> CallToolResult:
    body = {"ok": False, "error": error.message, "error_code": error.code}
    if error.field:
        body["field"] = error.field  # the argument at fault, as the REST API's error names it
    return _result(body, error=True)


async def list_tools(ctx: ServerRequestContext, params: PaginatedRequestParams | None) -> ListToolsResult:
    specs = await in_db_thread(listable_specs)(_user(ctx))
    tools = [Tool(name=spec.name, description=spec.description, input_schema=spec.parameters) for spec in specs]
    return ListToolsResult(tools=[*task_tools(), *tools])


def invoke(user, name: str, arguments: dict, key: str | None) -> CallToolResult:
    """One registry tool, for ``user``, through the deterministic dispatcher."""
    from tools.api_views import invocable_tool
    from tools.dispatch import ToolContext, argument_problem, dispatch
    from workspaces.access import workspace_for_write

    try:
        # Running a tool is acting, not reading: an operator where their work goes (a viewer: forbidden).
        workspace_for_write(user=user)
        spec = invocable_tool(name=name, user=user)
    except ApplicationError as error:
        return _refusal(error)
    problem = argument_problem(spec, arguments)
    if problem:
        return _result({"ok": False, "error": problem[0], "error_code": "invalid_arguments"}, error=True)
    # Namespaced per user, as in the REST API: one user's key never returns another's entry.
    context = ToolContext(owner_id=user.pk, idempotency_key=f"mcp:{user.pk}:{key}" if key else None)
    outcome = dispatch(name=name, arguments=arguments, context=context)
    return _result(outcome.as_dict(), error=not outcome.ok)


def _unstorable(arguments: dict, key: str | None) -> ApplicationError | None:
    """The REST API's JSON guard (agentos.jsonguard), which a request to /mcp does not pass:
    NUL characters, lone surrogates, numbers that are not finite, nesting too deep."""
    try:
        check_value(arguments)
        if key is not None:
            check_value({f"_meta.{IDEMPOTENCY_META_KEY}": key})
    except JSONRejected as error:
        return ApplicationError(error.message, code=error.code, field=error.field)
    return None


async def call_tool(ctx: ServerRequestContext, params: CallToolRequestParams) -> CallToolResult:
    from mcp_bridge import tasks_bridge

    user = _user(ctx)
    arguments = params.arguments or {}
    key = (ctx.meta or {}).get(IDEMPOTENCY_META_KEY) if ctx.meta is not None else None
    key = str(key)[:100] if key else None
    refused = _unstorable(arguments, key)
    if refused is not None:
        return _refusal(refused)
    try:
        if params.name == RUN_TASK:
            return _result(await tasks_bridge.run_task(ctx, user, arguments))
        if params.name == GET_TASK:
            return _result(await in_db_thread(tasks_bridge.get_task)(user, arguments))
    except ApplicationError as error:
        return _refusal(error)
    call = database_sync_to_async(invoke, thread_sensitive=False, executor=_tool_executor)
    return await call(user, params.name, arguments, key)


def build_server() -> Server:
    return Server("AgentOS", version="1", instructions="AgentOS runs LLM agents as durable tasks. run_task starts "
                  "one and reports progress; get_task reads it. The other tools run directly.",
                  on_list_tools=list_tools, on_call_tool=call_tool)
