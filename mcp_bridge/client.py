"""Talking to one MCP server with the official SDK, bounded and with typed failures.

Plain data in (:class:`Endpoint`), plain data out; no Django here. Every call opens its own
connection (a stdio server is a process started for the call and stopped after it), so a
worker holds no MCP state between steps and a crashed server costs one failed call.

Every failure is a :class:`McpCallError` whose ``code`` the tool dispatcher puts on the
step (``error_code``): ``mcp_unavailable`` (cannot connect, the process exited, HTTP error),
``mcp_protocol_error`` (a JSON-RPC error or a malformed answer), ``timeout``,
``mcp_not_allowed`` (the URL or command is refused by policy), ``mcp_not_configured`` (an
environment variable a header needs is unset), ``tool_error`` (the tool itself reported an
error: ``isError``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
from mcp import Client, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent, Tool
from mcp_types import CONNECTION_CLOSED
from pydantic import ValidationError

from mcp_bridge.conf import PLACEHOLDER
from tools.errors import ToolError

UNAVAILABLE = "mcp_unavailable"
PROTOCOL = "mcp_protocol_error"
INVALID_SCHEMA = "mcp_invalid_schema"
REMOVED = "tool_removed"
TIMEOUT = "timeout"
NOT_ALLOWED = "mcp_not_allowed"
NOT_CONFIGURED = "mcp_not_configured"
DISABLED = "disabled"
TOOL_ERROR = "tool_error"
IDEMPOTENCY_META_KEY = "agentos/idempotency-key"
MAX_PAGES = 20
RESULT_TEXT_LIMIT = 20_000


class McpCallError(ToolError):
    """A failed MCP call; ``code`` names its kind (see the module docstring)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Endpoint:
    """Where and how to reach one server. ``argv``/``env`` for stdio, ``url``/``headers`` for HTTP;
    header and env values may hold ``${NAME}`` placeholders, resolved at connect time."""

    name: str
    transport: str  # "http" | "stdio"
    timeout_s: float
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    argv: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    allow_private: bool = False


def resolve_placeholders(values: dict[str, str], what: str) -> dict[str, str]:
    """``${NAME}`` replaced by the environment variable NAME; an unset one is an error."""
    resolved = {}
    for key, value in values.items():
        missing = [name for name in PLACEHOLDER.findall(value) if name not in os.environ]
        if missing:
            raise McpCallError(NOT_CONFIGURED, f"{what} {key} needs the environment variable {missing[0]}, "
                                               "which is not set")
        resolved[key] = PLACEHOLDER.sub(lambda match: os.environ[match.group(1)], value)
    return resolved


def _check_url(endpoint: Endpoint):
    """The registered URL is the allowlist (its own host); its addresses must be public unless
    MCP_ALLOW_PRIVATE_ADDRESSES (tools/net.py rules). Returns the checked URL and address."""
    from tools.net import URLNotAllowed, check_url_allowed

    host = urlsplit(endpoint.url).hostname or ""
    try:
        return check_url_allowed(endpoint.url, allowed_hosts=[host], allow_private=endpoint.allow_private)
    except URLNotAllowed as error:
        raise McpCallError(NOT_ALLOWED, f"{error} (MCP_ALLOW_PRIVATE_ADDRESSES)") from None


class PinnedTransport(httpx2.AsyncBaseTransport):
    """Connects every request to the address that was checked, so a DNS answer cannot change
    between the check and the connection (the rule of ``tools.net.safe_fetch``). The Host
    header and the TLS server name stay the registered host's; a request for any other
    host or port is refused."""

    def __init__(self, checked) -> None:
        self.checked = checked
        self.inner = httpx2.AsyncHTTPTransport(trust_env=False)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        if url.host != self.checked.host or port != self.checked.port:
            raise httpx2.ConnectError(f"{url.host}:{port} is not the registered server", request=request)
        request.url = url.copy_with(host=self.checked.address)
        request.extensions = {**request.extensions, "sni_hostname": self.checked.host}
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _open_client(endpoint: Endpoint, stack: AsyncExitStack, errlog) -> Client:
    if endpoint.transport == "http":
        checked = _check_url(endpoint)
        headers = resolve_placeholders(endpoint.headers, "header")
        # No redirects: a server may not send AgentOS to a host the administrator did not register.
        http = await stack.enter_async_context(httpx2.AsyncClient(
            headers=headers, follow_redirects=False, trust_env=False, transport=PinnedTransport(checked),
            timeout=httpx2.Timeout(endpoint.timeout_s)))
        transport = streamable_http_client(endpoint.url, http_client=http)
    elif endpoint.argv:
        env = resolve_placeholders(endpoint.env, "variable")
        params = StdioServerParameters(command=endpoint.argv[0], args=list(endpoint.argv[1:]), env=env)
        transport = stdio_client(params, errlog=errlog)
    else:
        raise McpCallError(NOT_ALLOWED, "the server's command is not in MCP_STDIO_COMMANDS")
    client = Client(transport, read_timeout_seconds=endpoint.timeout_s, cache=None)
    return await stack.enter_async_context(client)


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def classify(error: BaseException) -> McpCallError:
    """The typed error for whatever the SDK, the transport or the timeout raised."""
    leaves = _leaves(error)
    for leaf in leaves:
        if isinstance(leaf, McpCallError):
            return leaf
    for leaf in leaves:
        if isinstance(leaf, TimeoutError):
            return McpCallError(TIMEOUT, "the MCP server did not answer in time")
        if isinstance(leaf, httpx2.HTTPStatusError):
            return McpCallError(UNAVAILABLE, f"the MCP server answered HTTP {leaf.response.status_code}")
        if isinstance(leaf, MCPError):
            if leaf.code == CONNECTION_CLOSED:
                return McpCallError(UNAVAILABLE, f"the MCP server closed the connection ({leaf.message})")
            return McpCallError(PROTOCOL, f"the MCP server answered with error {leaf.code}: {leaf.message}")
        if isinstance(leaf, (httpx2.HTTPError, OSError, anyio.ClosedResourceError, anyio.BrokenResourceError,
                             anyio.EndOfStream)):
            return McpCallError(UNAVAILABLE, f"cannot reach the MCP server: {type(leaf).__name__}: {leaf}")
        if isinstance(leaf, ValidationError):
            return McpCallError(PROTOCOL, f"the MCP server sent a malformed message: {leaf.errors()[0]['msg']}")
    first = leaves[0]
    return McpCallError(PROTOCOL, f"MCP exchange failed: {type(first).__name__}: {first}")


def _stderr_tail(errlog) -> str:
    try:
        errlog.seek(0)
        lines = errlog.read().decode("utf-8", "replace").strip().splitlines()
    except (OSError, ValueError):
        return ""
    return f" (its last output: {lines[-1][:200]})" if lines else ""


def run(endpoint: Endpoint, work: Callable[[Client], Awaitable[Any]]) -> Any:
    """Connect, ``await work(client)``, disconnect, all within ``endpoint.timeout_s``; from a
    thread with no event loop (a tool thread, a Celery job, an admin action)."""

    async def main() -> Any:
        with tempfile.TemporaryFile() as errlog:
            try:
                with anyio.fail_after(endpoint.timeout_s):
                    async with AsyncExitStack() as stack:
                        client = await _open_client(endpoint, stack, errlog)
                        return await work(client)
            except Exception as error:  # noqa: BLE001 - every failure becomes a typed one
                typed = classify(error)
                if typed.code == UNAVAILABLE and endpoint.transport == "stdio":
                    typed = McpCallError(UNAVAILABLE, str(typed) + _stderr_tail(errlog))
                raise typed from None

    try:
        return anyio.run(main)
    except McpCallError:
        raise
    except BaseException as error:  # an ExceptionGroup that escaped the SDK's task groups
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        raise classify(error) from None


async def _all_tools(client: Client) -> list[Tool]:
    """Every page of the list. A list still going on after MAX_PAGES is a protocol error:
    part of a list taken for the whole would mark the tools not seen yet as removed."""
    tools: list[Tool] = []
    cursor = None
    for _page in range(MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            return tools
    raise McpCallError(PROTOCOL, f"the MCP server's tool list did not end after {MAX_PAGES} pages "
                                 f"({len(tools)} tools so far); a partial list is not used")


def list_tools(endpoint: Endpoint) -> list[Tool]:
    return run(endpoint, _all_tools)


def result_value(result: CallToolResult) -> Any:
    """The JSON a step stores: the structured content if any, else the text blocks."""
    texts = [block.text for block in result.content if isinstance(block, TextContent)]
    text = "\n".join(texts)
    if result.is_error:
        raise McpCallError(TOOL_ERROR, text[:500] or "the tool reported an error")
    if result.structured_content is not None:
        return result.structured_content
    body: dict[str, Any] = {"text": text[:RESULT_TEXT_LIMIT]}
    others = [block.type for block in result.content if not isinstance(block, TextContent)]
    if others:
        body["other_content"] = others  # images, audio, resources: not passed to the model
    return body


def call_tool(endpoint: Endpoint, name: str, arguments: dict, idempotency_key: str | None = None) -> Any:
    meta = {IDEMPOTENCY_META_KEY: idempotency_key} if idempotency_key else None

    async def work(client: Client) -> Any:
        return result_value(await client.call_tool(name, arguments, meta=meta))

    return run(endpoint, work)


