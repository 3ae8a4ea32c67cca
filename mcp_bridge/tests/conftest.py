"""Fixtures of the MCP tests: the demo MCP server (demo_server.py, written with the SDK) over
stdio and over streamable HTTP on loopback, and servers registered with them."""

from __future__ import annotations

import json
import socket
import sys
import time

import pytest

DEMO = [sys.executable, "-m", "mcp_bridge.tests.demo_server", "stdio"]
STDIO_COMMANDS = {"demo": {"command": DEMO, "env": {}},
                  "demo-minimal": {"command": [*DEMO, "minimal"], "env": {}},
                  "demo-refs": {"command": [*DEMO, "refs"], "env": {}},
                  "demo-unstorable": {"command": [*DEMO, "unstorable"], "env": {}},
                  "demo-failing": {"command": [*DEMO, "failing"], "env": {}},
                  "demo-endless": {"command": [*DEMO, "endless"], "env": {}},
                  "missing": {"command": ["/nonexistent/mcp-server"], "env": {}}}
# For the worker and web processes the tests start.
MCP_ENV = {"MCP_STDIO_COMMANDS": json.dumps(STDIO_COMMANDS), "MCP_ALLOW_PRIVATE_ADDRESSES": "1"}


@pytest.fixture
def mcp_settings(settings):
    settings.MCP_STDIO_COMMANDS = STDIO_COMMANDS
    settings.MCP_ALLOW_PRIVATE_ADDRESSES = True
    return settings


def wait_listening(port: int, process, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"the demo server exited:\n{process.log()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("the demo server did not listen")


@pytest.fixture
def http_demo():
    """The demo server over streamable HTTP on a loopback port; yields its /mcp URL."""
    from agentos.testing import free_port, process_env, spawn

    port = free_port()
    process = spawn("mcp-demo", [sys.executable, "-m", "mcp_bridge.tests.demo_server", "http", str(port)],
                    process_env())
    try:
        wait_listening(port, process)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.stop()


@pytest.fixture
def stdio_server(db, mcp_settings):
    from mcp_bridge.models import McpServer

    return McpServer.objects.create(name="demo", transport="stdio", command="demo", timeout_s=15)


@pytest.fixture
def enable():
    def enable(*names: str) -> None:
        from tools.models import ToolSetting

        ToolSetting.objects.filter(name__in=names).update(enabled=True)

    return enable


@pytest.fixture
def agents_defaults(db):
    """Prompts, tools and agents (no knowledge base: faster than the full bootstrap)."""
    import prompts.defaults
    import tasks.defaults
    import tools.defaults

    prompts.defaults.load_defaults()
    tools.defaults.load_defaults()
    tasks.defaults.load_defaults()
