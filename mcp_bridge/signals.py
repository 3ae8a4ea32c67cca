"""A deleted MCP server takes its tools' on/off rows with it (mcp_server_forget_settings)."""

from django.db.models.signals import post_delete
from django.dispatch import receiver

from mcp_bridge.models import McpServer


@receiver(post_delete, sender=McpServer)
def forget_tool_settings(sender, instance: McpServer, **kwargs) -> None:
    from mcp_bridge.services import mcp_server_forget_settings

    mcp_server_forget_settings(server_name=instance.name)
