"""Routes of this app under /api/v1/ (see agentos.api.slash_optional)."""

from agentos.api import slash_optional
from prompts import api_views

urlpatterns = [
    slash_optional(r"prompts", api_views.PromptListView.as_view(), name="prompt-list"),
    slash_optional(r"prompt-rollouts", api_views.PromptRolloutListView.as_view(), name="prompt-rollout-list"),
    slash_optional(r"prompts/(?P<slug>[-a-zA-Z0-9_]+)", api_views.PromptDetailView.as_view(), name="prompt-detail"),
]
