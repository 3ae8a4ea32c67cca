"""Admin of MCP servers and their tools: register, refresh on demand, enable tools for agents."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from mcp_bridge.models import McpServer, McpTool, stdio_command_choices
from mcp_bridge.services import mcp_server_refresh, mcp_tools_set_enabled
from tools.models import ToolSetting
from workspaces.admin_audit import AuditedAdmin


class McpServerForm(forms.ModelForm):
    class Meta:
        model = McpServer
        fields = ["name", "description", "transport", "url", "headers", "command", "enabled", "timeout_s"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Only allowlisted commands can be chosen (MCP_STDIO_COMMANDS); nothing else can be typed.
        self.fields["command"] = forms.ChoiceField(choices=[("", "—"), *stdio_command_choices()], required=False,
                                                   help_text=self.fields["command"].help_text)


class McpToolInline(admin.TabularInline):
    model = McpTool
    extra = 0
    can_delete = True
    fields = ["name", "enabled", "description", "side_effects", "requires_approval", "schema_problem", "removed_at"]
    readonly_fields = ["name", "enabled", "description", "schema_problem", "removed_at"]

    @admin.display(boolean=True)
    def enabled(self, obj: McpTool) -> bool:
        return ToolSetting.objects.filter(name=obj.qualified_name, enabled=True).exists()

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # tools come from the server's own list


@admin.register(McpServer)
class McpServerAdmin(AuditedAdmin, admin.ModelAdmin):
    form = McpServerForm
    list_display = ["name", "transport", "url", "command", "enabled", "last_refreshed_at", "last_error_code"]
    list_filter = ["transport", "enabled"]
    readonly_fields = ["last_refreshed_at", "last_error", "last_error_code", "created_at", "updated_at"]
    inlines = [McpToolInline]
    actions = ["refresh_tools"]

    @admin.action(description="Refresh the tool lists of the selected servers")
    def refresh_tools(self, request, queryset) -> None:
        for server in queryset:
            result = mcp_server_refresh(server=server)
            self.message_user(request, str(result), messages.SUCCESS if result.ok else messages.ERROR)


@admin.register(McpTool)
class McpToolAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["__str__", "enabled", "side_effects", "requires_approval", "schema_problem", "removed_at"]
    list_filter = ["server", "side_effects", "requires_approval"]
    list_editable = ["side_effects", "requires_approval"]
    search_fields = ["name", "description"]
    readonly_fields = ["server", "name", "description", "input_schema", "schema_problem", "annotations",
                       "removed_at", "first_seen_at", "updated_at"]
    actions = ["enable_tools", "disable_tools"]

    @admin.display(boolean=True)
    def enabled(self, obj: McpTool) -> bool:
        return ToolSetting.objects.filter(name=obj.qualified_name, enabled=True).exists()

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Enable the selected tools (agents may be given them)")
    def enable_tools(self, request, queryset) -> None:
        count = mcp_tools_set_enabled(tools=queryset.select_related("server"), enabled=True)
        self.message_user(request, f"{count} tools enabled.")

    @admin.action(description="Disable the selected tools")
    def disable_tools(self, request, queryset) -> None:
        count = mcp_tools_set_enabled(tools=queryset.select_related("server"), enabled=False)
        self.message_user(request, f"{count} tools disabled.")
