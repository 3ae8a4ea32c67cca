from django.apps import AppConfig


class McpBridgeConfig(AppConfig):
    """MCP both ways: tools of registered MCP servers in the tool registry (the client side),
    and the enabled tools and tasks served at /mcp (the server side)."""

    name = "mcp_bridge"
    verbose_name = "MCP"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mcp_bridge.registry import mcp_tool_specs, mcp_tools_version_sql
        from tools.registry import register_provider

        register_provider(mcp_tool_specs, version_sql=mcp_tools_version_sql)
        from mcp_bridge import signals  # noqa: F401  (connects the receivers)
