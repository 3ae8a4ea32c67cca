"""Admin: workspaces and memberships are managed here (each change audited); the audit log
is read-only."""

from __future__ import annotations

from django.contrib import admin

from workspaces.audit import audit_record
from workspaces.models import AuditEvent, Membership, ServiceToken, Workspace


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "personal_for", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]

    def save_formset(self, request, form, formset, change) -> None:
        before = {m.pk: m.role for m in Membership.objects.filter(workspace=form.instance)}
        super().save_formset(request, form, formset, change)
        if formset.model is not Membership:
            return
        for membership in formset.new_objects:
            _audit(request, membership, "membership.add", None, {"role": membership.role})
        for membership, _fields in formset.changed_objects:
            _audit(request, membership, "membership.role", {"role": before.get(membership.pk)},
                   {"role": membership.role})
        for membership in formset.deleted_objects:
            _audit(request, membership, "membership.remove", {"role": before.get(membership.pk)}, None)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["workspace", "user", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["workspace__name", "user__username"]
    autocomplete_fields = ["user", "workspace"]

    def save_model(self, request, obj, form, change) -> None:
        before = Membership.objects.filter(pk=obj.pk).values_list("role", flat=True).first() if change else None
        super().save_model(request, obj, form, change)
        if before != obj.role:
            _audit(request, obj, "membership.role" if change else "membership.add",
                   {"role": before} if change else None, {"role": obj.role})

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        _audit(request, obj, "membership.remove", {"role": obj.role}, None)

    def delete_queryset(self, request, queryset) -> None:
        for membership in queryset:
            self.delete_model(request, membership)


def _audit(request, membership: Membership, action: str, before, after) -> None:
    audit_record(actor=request.user, action=action, target_type="membership",
                 target_id=membership.user.get_username(), workspace_id=membership.workspace_id,
                 before=before, after=after)


@admin.register(ServiceToken)
class ServiceTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "created_by", "created_at", "revoked_at"]
    readonly_fields = ["workspace", "name", "user", "created_by", "created_at", "revoked_at"]

    def has_add_permission(self, request) -> bool:  # created through the API, which shows the key once
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "workspace", "actor", "action", "target_type", "target_id"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor", "action", "target_id"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
