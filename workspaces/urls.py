from django.urls import path

from workspaces import pages

urlpatterns = [
    path("workspaces/", pages.workspaces_page, name="page-workspaces"),
    path("workspaces/<int:workspace_id>/audit", pages.audit_page, name="page-workspace-audit"),
]
