"""Admin for prompts: templates with their versions inline, versions with activation,
preview and diff. Every write goes through prompts.services, so a used version is never
changed in place: an edit becomes the next version and the admin says so."""

from __future__ import annotations

from django.apps import apps
from django.contrib import admin, messages
from django.db.models import CharField, Count, Exists, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from prompts import admin_views
from prompts.forms import PromptTemplateForm, PromptVersionForm, PromptVersionInlineForm, PromptVersionInlineFormSet
from prompts.models import PromptTemplate, PromptVersion
from prompts.services import prompt_version_activate, prompt_version_create, prompt_version_edit
from workspaces.admin_audit import AuditedAdmin


def _rate(successes: int | None, uses: int | None) -> str:
    return f"{successes / uses:.0%}" if uses else "—"


class PromptVersionInline(admin.StackedInline):
    model = PromptVersion
    form = PromptVersionInlineForm
    formset = PromptVersionInlineFormSet
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["number", "is_active", "body", "temperature", "max_tokens", "note", "statistics", "links"]
    readonly_fields = ["number", "is_active", "statistics", "links"]
    ordering = ["-number"]

    @admin.display(description="statistics")
    def statistics(self, version: PromptVersion) -> str:
        if not version.pk:
            return "—"
        return (f"{version.token_count} tokens · {version.uses} uses · success {_rate(version.successes, version.uses)}"
                + (" · used, so read-only here: edit it on its own page to make a new version"
                   if version.used else ""))

    @admin.display(description="")
    def links(self, version: PromptVersion) -> str:
        if not version.pk:
            return ""
        return format_html('<a href="{}">preview</a> · <a href="{}">diff</a>',
                           reverse("admin:prompts_promptversion_preview", args=[version.pk],
                                   current_app=self.admin_site.name),
                           reverse("admin:prompts_promptversion_diff", args=[version.pk],
                                   current_app=self.admin_site.name))


class HasActiveVersionFilter(admin.SimpleListFilter):
    title = "active version"
    parameter_name = "active"

    def lookups(self, request, model_admin):
        return [("yes", "has an active version"), ("no", "no active version")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(active_number__isnull=False)
        if self.value() == "no":
            return queryset.filter(active_number__isnull=True)
        return queryset


@admin.register(PromptTemplate)
class PromptTemplateAdmin(AuditedAdmin, admin.ModelAdmin):
    # Template fields are audited here (prompt.template.*); its versions by prompts.services.
    audit_inlines = audit_columns = audit_unchanged_saves = False
    form = PromptTemplateForm
    inlines = [PromptVersionInline]
    list_display = ["slug", "description", "active_version", "active_tokens", "active_uses", "active_success_rate",
                    "updated_at"]
    search_fields = ["slug", "description", "versions__body"]
    list_filter = [HasActiveVersionFilter, "updated_at"]

    def get_queryset(self, request):
        active = PromptVersion.objects.filter(template=OuterRef("pk"), is_active=True)
        return super().get_queryset(request).annotate(
            active_number=Subquery(active.values("number")[:1]),
            active_token_count=Subquery(active.values("token_count")[:1]),
            active_uses_count=Subquery(active.values("uses")[:1]),
            active_successes=Subquery(active.values("successes")[:1]),
        ).distinct()

    @admin.display(description="active version", ordering="active_number")
    def active_version(self, template) -> str:
        return f"v{template.active_number}" if template.active_number else "none"

    @admin.display(description="tokens", ordering="active_token_count")
    def active_tokens(self, template) -> int | None:
        return template.active_token_count

    @admin.display(description="uses", ordering="active_uses_count")
    def active_uses(self, template) -> int | None:
        return template.active_uses_count

    @admin.display(description="success rate")
    def active_success_rate(self, template) -> str:
        return _rate(template.active_successes, template.active_uses_count)

    def save_formset(self, request, form, formset, change) -> None:
        if formset.model is not PromptVersion:
            return super().save_formset(request, form, formset, change)
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for version_form in formset.forms:
            if not version_form.has_changed() or not hasattr(version_form, "cleaned_data"):
                continue
            data = {name: version_form.cleaned_data.get(name) for name in ("body", "temperature", "max_tokens")}
            if version_form.instance.pk is None:
                has_active = formset.instance.versions.filter(is_active=True).exists()
                version = prompt_version_create(template=formset.instance, note=version_form.cleaned_data["note"],
                                                created_by=request.user, activate=not has_active, **data)
                formset.new_objects.append(version)
                continue
            changed = {name: version_form.cleaned_data.get(name) for name in version_form.changed_data}
            version, created = prompt_version_edit(version=version_form.instance, edited_by=request.user, **changed)
            _report_edit(request, version_form.instance, version, created)
            (formset.new_objects if created else formset.changed_objects).append(
                version if created else (version, version_form.changed_data))
        return None


def with_feedback(versions):
    """Each version with ``feedback_up`` / ``feedback_down``: ratings of the tasks in which it
    ran a step (Step.prompt_label is "<slug>@<number>"), a task counted once per version."""
    if not apps.is_installed("evals"):
        return versions
    from evals.models import TaskFeedback
    from tasks.models import Step

    versions = versions.annotate(label_text=Concat("template__slug", Value("@"), Cast("number", CharField())))
    used_in_task = Step.objects.filter(task_id=OuterRef("task_id"), prompt_label=OuterRef(OuterRef("label_text")))

    def count(rating: int):
        rated = (TaskFeedback.objects.filter(Exists(used_in_task), rating=rating).order_by()
                 .values("rating").annotate(total=Count("pk")).values("total"))
        return Coalesce(Subquery(rated), 0)

    return versions.annotate(feedback_up=count(1), feedback_down=count(-1))


def _report_edit(request: HttpRequest, old: PromptVersion, version: PromptVersion, created: bool) -> None:
    if created:
        messages.warning(request, f"Version {old.number} of {old.template.slug} has been used, so it cannot change: "
                                  f"your edit was saved as version {version.number}, which is not active yet. "
                                  f"Activate it to use it in runs; version {old.number} keeps its statistics.")


@admin.register(PromptVersion)
class PromptVersionAdmin(admin.ModelAdmin):
    form = PromptVersionForm
    change_form_template = "admin/prompts/promptversion/change_form.html"
    list_display = ["__str__", "template", "number", "is_active", "is_used", "token_count", "uses",
                    "success_rate_display", "feedback_display", "mean_tokens_in_display", "mean_latency_display",
                    "cost_display", "created_by", "created_at"]
    list_display_links = ["__str__"]
    list_filter = ["is_active", "origin", "template", "created_at"]
    search_fields = ["template__slug", "body", "note"]
    list_select_related = ["template", "created_by"]
    actions = ["activate_selected"]
    readonly_fields = ["number", "is_active", "origin", "token_count", "created_by", "created_at", "uses",
                       "successes", "failures", "success_rate_display", "mean_tokens_in_display",
                       "mean_tokens_out_display", "mean_latency_display", "cost_display"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields) + ["feedback_display"]
        return fields + ["template"] if obj else fields

    def get_queryset(self, request):
        from observability.selectors import with_cost

        return with_cost(with_feedback(super().get_queryset(request)))

    @admin.display(description="cost (USD)", ordering="cost_usd_total")
    def cost_display(self, version: PromptVersion) -> str:
        # Summed from the version's priced steps (observability/selectors.py).
        total = getattr(version, "cost_usd_total", None)
        return "—" if total is None else f"{total:.6f}"

    @admin.display(description="feedback 👍 / 👎")
    def feedback_display(self, version: PromptVersion) -> str:
        up, down = getattr(version, "feedback_up", None), getattr(version, "feedback_down", None)
        return "—" if up is None else f"{up} / {down}"

    @admin.display(description="used", boolean=True)
    def is_used(self, version: PromptVersion) -> bool:
        return version.used

    @admin.display(description="success rate")
    def success_rate_display(self, version: PromptVersion) -> str:
        return _rate(version.successes, version.uses)

    @admin.display(description="mean tokens in")
    def mean_tokens_in_display(self, version: PromptVersion) -> str:
        return "—" if version.mean_tokens_in is None else f"{version.mean_tokens_in:.0f}"

    @admin.display(description="mean tokens out")
    def mean_tokens_out_display(self, version: PromptVersion) -> str:
        return "—" if version.mean_tokens_out is None else f"{version.mean_tokens_out:.0f}"

    @admin.display(description="mean latency (ms)")
    def mean_latency_display(self, version: PromptVersion) -> str:
        return "—" if version.mean_latency_ms is None else f"{version.mean_latency_ms:.0f}"

    def has_delete_permission(self, request, obj=None) -> bool:
        # A used or active version is history (runs point at it); only unused drafts go.
        if obj is not None and (obj.used or obj.is_active):
            return False
        return super().has_delete_permission(request, obj)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/preview/", view(admin_views.PreviewView.as_view(model_admin=self)),
                 name="prompts_promptversion_preview"),
            path("<int:pk>/diff/", view(admin_views.DiffView.as_view(model_admin=self)),
                 name="prompts_promptversion_diff"),
            path("<int:pk>/activate/", view(admin_views.ActivateView.as_view(model_admin=self)),
                 name="prompts_promptversion_activate"),
        ] + super().get_urls()

    def save_model(self, request, obj: PromptVersion, form, change: bool) -> None:
        data = {name: form.cleaned_data.get(name) for name in ("body", "temperature", "max_tokens", "note")}
        if not change:
            has_active = obj.template.versions.filter(is_active=True).exists()
            saved = prompt_version_create(template=obj.template, created_by=request.user, activate=not has_active,
                                          **data)
        else:
            original = PromptVersion.objects.select_related("template").get(pk=obj.pk)
            changed = {name: data[name] for name in form.changed_data if name in data}
            saved, created = prompt_version_edit(version=original, edited_by=request.user, **changed)
            _report_edit(request, original, saved, created)
        # The admin goes on with `obj` (log entry, redirect): make it the saved version.
        for model_field in obj._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(saved, model_field.attname))
        obj._state.adding = False

    @admin.action(description="Activate selected version")
    def activate_selected(self, request, queryset) -> None:
        versions = list(queryset.select_related("template"))
        templates = [version.template_id for version in versions]
        if len(templates) != len(set(templates)):
            self.message_user(request, "Select at most one version per template to activate.", messages.ERROR)
            return
        for version in versions:
            prompt_version_activate(version=version, actor=request.user)
        self.message_user(request, "Activated " + ", ".join(version.label for version in versions) + ".",
                          messages.SUCCESS)

    def response_post_save_change(self, request, obj):
        return HttpResponseRedirect(reverse("admin:prompts_promptversion_change", args=[obj.pk],
                                            current_app=self.admin_site.name))


# Registered with this module: the rollouts' admin lives in its own file.
from prompts import admin_rollouts  # noqa: E402, F401
