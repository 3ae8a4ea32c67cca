"""Routes of this app under /api/v1/ (see agentos.api.slash_optional)."""

from agentos.api import slash_optional
from tools import api_views

urlpatterns = [
    slash_optional(r"tools", api_views.ToolListView.as_view(), name="tool-list"),
    slash_optional(r"tools/(?P<name>[^/]+)/invoke", api_views.ToolInvokeView.as_view(), name="tool-invoke"),
]
