"""The prompt editors' site: the prompt admin pages (templates and their versions, preview,
diff, activation, rollouts) at /prompt-editor/, for staff and for every prompt editor (or
admin) of a team workspace, who are not staff.

Prompts are shared by every workspace, so the role opens them all; a personal workspace
(where everyone is admin) does not count. The pages are the staff admin's own ModelAdmins:
every write goes through prompts.services and prompts.rollouts, which write the audit rows
(``prompt.version.*``, ``prompt.rollout.*``). Editors cannot delete anything here.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from prompts.admin import PromptTemplateAdmin, PromptVersionAdmin, PromptVersionInline
from prompts.admin_rollouts import PromptRolloutAdmin
from prompts.models import PromptRollout, PromptTemplate, PromptVersion
from workspaces.access import may_edit_prompts


class PromptEditorSite(admin.AdminSite):
    site_header = _("AgentOS prompts")
    site_title = _("AgentOS prompts")
    index_title = _("Prompts and rollouts")
    site_url = "/"
    login_form = AuthenticationForm  # prompt editors need not be staff
    enable_nav_sidebar = False

    def has_permission(self, request) -> bool:
        return may_edit_prompts(request.user)

    def get_urls(self):
        # Without the admin's "view on site" redirect, which would follow any model's object
        # (by content type and id) to its page: this site is for prompts only.
        return [pattern for pattern in super().get_urls() if getattr(pattern, "name", None) != "view_on_site"]


prompt_editor_site = PromptEditorSite(name="prompt_editor")


class EditorPermissions:
    """The role, not Django's model permissions, says who may view, add and change."""

    def has_module_permission(self, request) -> bool:
        return may_edit_prompts(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return may_edit_prompts(request.user)

    def has_add_permission(self, request, *args) -> bool:
        return may_edit_prompts(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return may_edit_prompts(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # drafts are deleted by staff; everything else is history


class EditorVersionInline(EditorPermissions, PromptVersionInline):
    pass


class EditorTemplateAdmin(EditorPermissions, PromptTemplateAdmin):
    inlines = [EditorVersionInline]


class EditorVersionAdmin(EditorPermissions, PromptVersionAdmin):
    pass


class EditorRolloutAdmin(EditorPermissions, PromptRolloutAdmin):
    pass


prompt_editor_site.register(PromptTemplate, EditorTemplateAdmin)
prompt_editor_site.register(PromptVersion, EditorVersionAdmin)
prompt_editor_site.register(PromptRollout, EditorRolloutAdmin)
