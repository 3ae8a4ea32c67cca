from django.urls import path

from prompts.admin_editors import prompt_editor_site
from workspaces import pages

urlpatterns = [
    # The prompt admin pages for the prompt_editor role (prompts are shared by every workspace).
    path("prompt-editor/", prompt_editor_site.urls),
    path("workspaces/", pages.workspaces_page, name="page-workspaces"),
    path("workspaces/<int:workspace_id>/audit", pages.audit_page, name="page-workspace-audit"),
]
