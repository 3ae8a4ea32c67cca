"""Routes of this app under /api/v1/ (see agentos.api.slash_optional)."""

urlpatterns: list = []
