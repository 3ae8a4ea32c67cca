"""Routes of this app, included once at the site root: the API under api/v1/ (slash
optional, like every app's) and the pages under evals/."""

from django.urls import include, path

from evals import pages

page_patterns = [
    path("", pages.evals_page, name="page-evals"),
    path("runs/<int:run_id>/", pages.run_page, name="page-eval-run"),
    path("compare/", pages.compare_page, name="page-eval-compare"),
    path("tasks/<uuid:task_id>/feedback", pages.feedback_page, name="page-task-feedback"),
]

urlpatterns = [
    path("api/v1/", include("evals.api_urls")),
    path("evals/", include(page_patterns)),
]
