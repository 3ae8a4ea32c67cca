"""Admin: agents are edited here; tasks and their steps are read-only records."""

from __future__ import annotations

from django.contrib import admin

from tasks.models import AgentSpec, Step, Task
from workspaces.admin_audit import AuditedAdmin


@admin.register(AgentSpec)
class AgentSpecAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["name", "prompt_slug", "max_steps", "enabled", "updated_at"]
    list_filter = ["enabled"]
    search_fields = ["name", "description"]


class StepInline(admin.TabularInline):
    model = Step
    extra = 0
    can_delete = False
    fields = ["index", "kind", "agent", "subtask_id", "status", "prompt_label", "error", "tokens_in",
              "tokens_out", "duration_ms", "created_at"]
    readonly_fields = fields
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "status", "provider_problem", "trigger", "progress", "step_count", "created_at"]
    list_filter = ["status", "trigger"]
    search_fields = ["id", "query", "owner__username"]
    inlines = [StepInline]
    readonly_fields = [field.name for field in Task._meta.fields]

    @admin.display(description="provider error")
    def provider_problem(self, task: Task) -> str:
        """What an operator must look at: the provider's error a task waits on, paused or failed for."""
        error = task.provider_error if task.status in ("waiting_provider", "paused", "failed") else None
        return f"{error.get('kind')}: {error.get('code')}" if isinstance(error, dict) else ""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # Viewing is allowed; state changes go through tasks.services, never a form.
        return request.method in ("GET", "HEAD") and super().has_change_permission(request, obj)
