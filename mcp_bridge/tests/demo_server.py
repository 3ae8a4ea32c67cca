"""A small MCP server written with the SDK, for the tests: ``python -m mcp_bridge.tests.demo_server
stdio [<variant>]`` or ``... http <port> [<variant>]``.

Tools: echo (returns the text and the idempotency key it was sent), slow (sleeps), crash
(the process exits), fail (reports an error), broken (an input schema that is not valid
JSON Schema). Variants:

- ``minimal`` lists echo only (the others are "removed");
- ``refs`` lists echo and tools whose schemas are valid JSON Schema but whose references
  cannot be followed (dangling: a ``$ref`` to nothing; loop, deep_loop: references that
  loop without going into the arguments), and tree, whose recursion is fine;
- ``unstorable`` lists echo and tools holding what PostgreSQL cannot store: a NUL character
  in the name, the description or the schema, and NaN in the schema (written as the JSON
  number ``NaN``, which the SDK's parser accepts and its serializer never writes);
- ``failing`` answers the tool list with an error whose message holds a NUL character;
- ``endless`` lists one tool per page, and every page gives a cursor to the next one.
"""

from __future__ import annotations

import io
import os
import sys

import anyio
from mcp import MCPError
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.types import CallToolRequestParams, CallToolResult, ListToolsResult, PaginatedRequestParams, TextContent, Tool

IDEMPOTENCY_META_KEY = "agentos/idempotency-key"
VARIANT = next((arg for arg in sys.argv[2:] if not arg.isdigit()), "")

TOOLS = [
    Tool(name="echo", description="Echo the given text back, word for word.",
         input_schema={"type": "object", "properties": {"text": {"type": "string", "maxLength": 2000}},
                       "required": ["text"], "additionalProperties": False}),
    Tool(name="slow", description="Sleep for a number of seconds.",
         input_schema={"type": "object", "properties": {"seconds": {"type": "number"}}}),
    Tool(name="crash", description="Exit the server process at once.", input_schema={"type": "object"}),
    Tool(name="fail", description="Report a failure of the tool.", input_schema={"type": "object"}),
    Tool(name="broken", description="A tool whose schema is not JSON Schema.",
         input_schema={"type": "object", "properties": {"x": {"type": "no-such-type"}}}),
]

REFS = [
    TOOLS[0],
    Tool(name="dangling", description="A reference to a definition that does not exist.",
         input_schema={"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}}),
    Tool(name="loop", description="A schema that is itself.", input_schema={"type": "object", "$ref": "#"}),
    Tool(name="deep_loop", description="A definition that is itself, through allOf.",
         input_schema={"type": "object", "properties": {"x": {"$ref": "#/$defs/a"}},
                       "$defs": {"a": {"allOf": [{"type": "object"}, {"$ref": "#/$defs/a"}]}}}),
    Tool(name="tree", description="A tree of nodes: recursion that goes into the arguments.",
         input_schema={"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}}),
]

NAN = "__NaN__"  # written as NaN on the wire (NanWriter)
UNSTORABLE = [
    TOOLS[0],
    Tool(name="nul\x00name", description="A NUL character in its name.", input_schema={"type": "object"}),
    Tool(name="nul_text", description="A NUL\x00 character in its description.", input_schema={"type": "object"}),
    Tool(name="nul_schema", description="A NUL character in its schema.",
         input_schema={"type": "object", "properties": {"x": {"type": "string", "description": "a\x00b"}}}),
    Tool(name="nan_schema", description="NaN in its schema.",
         input_schema={"type": "object", "properties": {"x": {"type": "number", "maximum": NAN}}}),
]


class NanWriter(io.TextIOWrapper):
    """Standard output that writes the string NAN as the JSON number NaN."""

    def write(self, text: str) -> int:
        return super().write(text.replace(f'"{NAN}"', "NaN"))


async def list_tools(ctx: ServerRequestContext, params: PaginatedRequestParams | None) -> ListToolsResult:
    if VARIANT == "minimal":
        return ListToolsResult(tools=TOOLS[:1])
    if VARIANT == "refs":
        return ListToolsResult(tools=REFS)
    if VARIANT == "unstorable":
        return ListToolsResult(tools=UNSTORABLE)
    if VARIANT == "failing":
        raise MCPError(code=-32603, message="the catalogue is\x00 broken")
    if VARIANT == "endless":
        page = int(params.cursor) if params is not None and params.cursor else 0
        return ListToolsResult(tools=[Tool(name=f"page_{page}", input_schema={"type": "object"})],
                               next_cursor=str(page + 1))
    return ListToolsResult(tools=TOOLS)


async def call_tool(ctx: ServerRequestContext, params: CallToolRequestParams) -> CallToolResult:
    arguments = params.arguments or {}
    if params.name == "echo":
        key = (ctx.meta or {}).get(IDEMPOTENCY_META_KEY) if ctx.meta is not None else None
        body = {"echo": arguments.get("text"), "idempotency_key": key, "pid": os.getpid()}
        return CallToolResult(content=[TextContent(type="text", text=str(arguments.get("text")))],
                              structured_content=body)
    if params.name == "slow":
        await anyio.sleep(float(arguments.get("seconds", 30)))
        return CallToolResult(content=[TextContent(type="text", text="woke up")])
    if params.name == "crash":
        os._exit(3)
    if params.name == "tree":
        return CallToolResult(content=[TextContent(type="text", text="a tree")], structured_content=arguments)
    if params.name == "fail":
        return CallToolResult(content=[TextContent(type="text", text="the widget is out of stock")], is_error=True)
    raise ValueError(f"unknown tool {params.name}")


server = Server("demo", on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio() -> None:
    stdout = anyio.wrap_file(NanWriter(sys.stdout.buffer, encoding="utf-8")) if VARIANT == "unstorable" else None
    async with stdio_server(stdout=stdout) as (read, write):
        await server.run(read, write, server.create_initialization_options())


def main() -> None:
    if sys.argv[1] == "stdio":
        anyio.run(serve_stdio)
    else:
        import uvicorn

        port = int(sys.argv[2])
        from mcp.server.transport_security import TransportSecuritySettings

        # The SDK's loopback defaults plus the name the DNS-rebinding test gives this server.
        security = TransportSecuritySettings(allowed_hosts=["127.0.0.1:*", "localhost:*", "mcp-rebind.test:*"],
                                             allowed_origins=["http://127.0.0.1:*", "http://localhost:*"])
        uvicorn.run(server.streamable_http_app(transport_security=security), host="127.0.0.1", port=port,
                    log_level="warning")


if __name__ == "__main__":
    main()
