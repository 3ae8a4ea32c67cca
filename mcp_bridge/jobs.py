"""Celery jobs of the MCP client side (discovered as ``<app>.jobs``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="mcp_bridge.refresh_tool_lists", ignore_result=True)
def refresh_tool_lists() -> list[str]:
    """Celery beat, every MCP_REFRESH_INTERVAL seconds: list the tools of every enabled server."""
    from mcp_bridge.services import mcp_servers_refresh_all

    return [str(result) for result in mcp_servers_refresh_all()]
