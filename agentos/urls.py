from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from agentos import health
from observability.views import metrics_view

api_v1 = [
    path("", include("tasks.api_urls")),
    path("", include("tools.api_urls")),
    path("", include("prompts.api_urls")),
    path("", include("memory.api_urls")),
    path("", include("workspaces.api_urls")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("hooks/", include("triggers.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    # Django's conventional sign-in address leads to ours (the query string, ?next=, is kept).
    path("accounts/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("", include("evals.urls")),  # its API under api/v1/ and its pages under evals/
    path("", include("workspaces.urls")),
    path("", include("tasks.pages.urls")),
]

# JSON for /api/ and /hooks/, and a 503 "temporarily unavailable" answer when PostgreSQL or
# Redis is down (agentos.middleware).
handler500 = "agentos.middleware.server_error"
