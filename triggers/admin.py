"""Admin: webhooks (with their secret and a ready-to-copy example), schedules, callback log.

Staff changes to webhooks and schedules are audited like a workspace admin's (triggers.editing):
one row per object created, changed, deleted or touched by a list action, in the object's
workspace, with the same actions and state (the secret as ``[redacted]``)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from triggers.editing import schedule_state, webhook_state
from triggers.forms import ScheduledQueryForm, WebhookForm
from triggers.models import CallbackAttempt, CallbackSecret, ScheduledQuery, Webhook, WebhookDelivery
from triggers.schedules import describe, scheduled_query_save
from triggers.services import webhook_rotate_secret
from workspaces.admin_audit import AuditedAdmin
from workspaces.audit import audit_record


class WorkspaceAuditedAdmin(AuditedAdmin):
    """AuditedAdmin with rows in the object's workspace and the state of ``audit_state_of``."""

    audit_columns = False
    audit_inlines = False
    audit_target: str = ""

    @staticmethod
    def audit_state_of(obj) -> dict:
        raise NotImplementedError

    def audit_name(self) -> str:
        return self.audit_target

    def audit_state(self, request, obj) -> dict:
        return self.audit_state_of(obj)

    def _audit(self, request, obj, verb: str, before, after) -> None:
        audit_record(actor=request.user, action=f"{self.audit_target}.{verb}", target_type=self.audit_target,
                     target_id=obj.pk, workspace_id=obj.workspace_id, before=before, after=after)


class ScheduleSaving(admin.ModelAdmin):
    """Saves go through the one writer of the beat entry (below the audit in the MRO, so the
    state before is read first)."""

    def save_model(self, request, obj: ScheduledQuery, form: ScheduledQueryForm, change: bool) -> None:
        scheduled_query_save(schedule=obj, interval_minutes=form.cleaned_data.get("interval_minutes"),
                             crontab=form.cleaned_data.get("crontab"))


@admin.register(Webhook)
class WebhookAdmin(WorkspaceAuditedAdmin, admin.ModelAdmin):
    form = WebhookForm
    audit_target = "webhook"
    audit_state_of = staticmethod(webhook_state)
    list_display = ["name", "owner", "enabled", "callback_url", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["name", "owner__username"]
    readonly_fields = ["id", "hook_path", "secret", "created_at", "updated_at"]
    fields = ["name", "owner", "enabled", "query_template", "options", "callback_url", "id", "hook_path", "secret",
              "created_at", "updated_at"]
    actions = ["rotate_secret"]

    @admin.display(description="POST to")
    def hook_path(self, obj: Webhook) -> str:
        if not obj.pk:
            return "(after saving)"
        return format_html("<code>{}</code> — signed with the secret below; see the README, "
                           "section Triggers", reverse("webhook-receive", args=[obj.pk]))

    @admin.action(description="Rotate the secret of the selected webhooks")
    def rotate_secret(self, request, queryset) -> None:
        for webhook in queryset:
            webhook_rotate_secret(webhook=webhook)
        messages.success(request, f"New secrets for {queryset.count()} webhook(s); update their senders.")


@admin.register(ScheduledQuery)
class ScheduledQueryAdmin(WorkspaceAuditedAdmin, ScheduleSaving):
    form = ScheduledQueryForm
    audit_target = "schedule"
    audit_state_of = staticmethod(schedule_state)
    list_display = ["name", "owner", "schedule", "enabled", "last_run_at", "last_error"]
    list_filter = ["enabled"]
    search_fields = ["name", "query", "owner__username"]
    readonly_fields = ["periodic_task", "last_run_at", "last_task_id", "last_error", "last_error_at", "created_at",
                       "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "owner", "query", "enabled"]}),
        ("Schedule", {"fields": ["interval_minutes", "crontab"],
                      "description": "Either an interval in minutes or a crontab expression (UTC)."}),
        ("Agent settings", {"fields": ["options", "callback_url"]}),
        ("Runs", {"fields": ["periodic_task", "last_run_at", "last_task_id", "last_error", "last_error_at",
                             "created_at", "updated_at"],
                  "description": "A run that started no task says why in “last error”, until a run starts one."}),
    ]

    @admin.display(description="schedule")
    def schedule(self, obj: ScheduledQuery) -> str:
        return describe(obj)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner", "periodic_task__interval",
                                                            "periodic_task__crontab")


@admin.register(CallbackSecret)
class CallbackSecretAdmin(admin.ModelAdmin):
    list_display = ["owner", "created_at"]
    search_fields = ["owner__username"]
    readonly_fields = ["secret", "created_at"]


@admin.register(CallbackAttempt)
class CallbackAttemptAdmin(admin.ModelAdmin):
    list_display = ["created_at", "task", "event", "attempt", "status_code", "ok", "duration_ms", "url"]
    list_filter = ["event", "ok"]
    search_fields = ["task__id", "url", "delivery_id"]
    readonly_fields = [field.name for field in CallbackAttempt._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return request.method in ("GET", "HEAD") and super().has_change_permission(request, obj)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """Accepted deliveries still inside the signature tolerance (older ones are pruned)."""

    list_display = ["received_at", "webhook", "signed_at", "task"]
    search_fields = ["webhook__name", "body_sha256", "task__id"]
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]
    list_select_related = ["webhook"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return request.method in ("GET", "HEAD") and super().has_change_permission(request, obj)
