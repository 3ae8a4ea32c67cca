from django.urls import path

from prompts.admin_editors import prompt_editor_site
from workspaces import pages

urlpatterns = [
    # The prompt admin pages for the prompt_editor role (prompts are shared by every workspace).
    path("prompt-editor/", prompt_editor_site.urls),
    path("workspaces/", pages.workspaces_page, name="page-workspaces"),
    path("workspaces/<int:workspace_id>/audit", pages.audit_page, name="page-workspace-audit"),
    path("workspaces/<int:workspace_id>/webhooks", pages.webhook_create, name="page-workspace-webhook-create"),
    path("workspaces/<int:workspace_id>/webhooks/<uuid:webhook_id>/delete", pages.webhook_delete,
         name="page-workspace-webhook-delete"),
    path("workspaces/<int:workspace_id>/schedules", pages.schedule_create, name="page-workspace-schedule-create"),
    path("workspaces/<int:workspace_id>/schedules/<int:schedule_id>/delete", pages.schedule_delete,
         name="page-workspace-schedule-delete"),
]
