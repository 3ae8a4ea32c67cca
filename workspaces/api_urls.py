"""Routes of this app under /api/v1/ (see agentos.api.slash_optional)."""

from agentos.api import slash_optional
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
]
