from django.contrib import admin

from tools.models import ToolSetting
from tools.registry import UnknownTool, get_tool
from workspaces.admin_audit import AuditedAdmin


@admin.register(ToolSetting)
class ToolSettingAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["name", "enabled", "description", "requires_approval", "side_effects", "updated_at"]
    list_editable = ["enabled"]
    list_filter = ["enabled"]
    readonly_fields = ["name", "updated_at"]

    def _spec(self, obj: ToolSetting):
        try:
            return get_tool(obj.name)
        except UnknownTool:
            return None

    @admin.display(description="description")
    def description(self, obj: ToolSetting) -> str:
        spec = self._spec(obj)
        return spec.description if spec else "(no longer registered)"

    @admin.display(boolean=True)
    def requires_approval(self, obj: ToolSetting) -> bool | None:
        spec = self._spec(obj)
        return spec.requires_approval if spec else None

    @admin.display(boolean=True)
    def side_effects(self, obj: ToolSetting) -> bool | None:
        spec = self._spec(obj)
        return spec.side_effects if spec else None

    def has_add_permission(self, request) -> bool:
        return False  # rows come from the registry (bootstrap); only the switch is edited
