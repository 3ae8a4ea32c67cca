"""Routes of this app under /api/v1/ (see agentos.api.slash_optional), with the
workspace's webhooks and schedules (triggers/api.py)."""

from agentos.api import slash_optional
from triggers import api as triggers_api
from workspaces import api

WORKSPACE = r"workspaces/(?P<workspace_id>[^/]+)"

urlpatterns = [
    slash_optional(r"workspaces", api.WorkspaceListView.as_view(), name="workspace-list"),
    slash_optional(rf"{WORKSPACE}/members", api.MembersView.as_view(), name="workspace-members"),
    slash_optional(rf"{WORKSPACE}/members/(?P<username>[^/]+)", api.MemberDeleteView.as_view(),
                   name="workspace-member"),
    slash_optional(rf"{WORKSPACE}/tokens", api.TokensView.as_view(), name="workspace-tokens"),
    slash_optional(rf"{WORKSPACE}/tokens/(?P<token_id>[^/]+)/rotate", api.TokenRotateView.as_view(),
                   name="workspace-token-rotate"),
    slash_optional(rf"{WORKSPACE}/tokens/(?P<token_id>[^/]+)/revoke", api.TokenRevokeView.as_view(),
                   name="workspace-token-revoke"),
    slash_optional(rf"{WORKSPACE}/audit", api.AuditView.as_view(), name="workspace-audit"),
    # Webhooks and schedules of the workspace (triggers/api.py).
    slash_optional(rf"{WORKSPACE}/webhooks", triggers_api.WebhooksView.as_view(), name="workspace-webhooks"),
    slash_optional(rf"{WORKSPACE}/webhooks/(?P<webhook_id>[^/]+)", triggers_api.WebhookView.as_view(),
                   name="workspace-webhook"),
    slash_optional(rf"{WORKSPACE}/webhooks/(?P<webhook_id>[^/]+)/rotate", triggers_api.WebhookRotateView.as_view(),
                   name="workspace-webhook-rotate"),
    slash_optional(rf"{WORKSPACE}/schedules", triggers_api.SchedulesView.as_view(), name="workspace-schedules"),
    slash_optional(rf"{WORKSPACE}/schedules/(?P<schedule_id>[^/]+)", triggers_api.ScheduleView.as_view(),
                   name="workspace-schedule"),
]
