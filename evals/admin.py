"""Admin of datasets (items inline, checks validated as in the API), eval runs (read-only,
with their results and a link to the comparison page) and feedback on tasks."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from evals.errors import EvalError
from evals.models import Dataset, DatasetItem, EvalResult, EvalRun, TaskFeedback
from evals.services import dataset_item_validate


class DatasetItemForm(forms.ModelForm):
    class Meta:
        model = DatasetItem
        fields = ["query", "variables", "checks", "note"]

    def clean(self):
        data = super().clean()
        dataset = getattr(self.instance, "dataset", None) if self.instance.dataset_id else None
        # A dataset being added has no template yet: its items' checks are still validated.
        dataset = dataset or getattr(self, "parent_dataset", None) or Dataset()
        try:
            dataset_item_validate(dataset=dataset, query=data.get("query") or "",
                                  variables=data.get("variables") or {}, checks=data.get("checks") or [])
        except EvalError as error:
            raise ValidationError({error.field or "checks": error.message})
        return data


class DatasetItemInline(admin.StackedInline):
    model = DatasetItem
    form = DatasetItemForm
    extra = 0
    fields = ["query", "variables", "checks", "note", "source_task"]
    readonly_fields = ["source_task"]

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        # New items validate against the dataset being edited (its template's variables).
        formset.form = type("BoundDatasetItemForm", (DatasetItemForm,), {"parent_dataset": obj})
        return formset


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    inlines = [DatasetItemInline]
    list_display = ["name", "owner", "template", "item_count", "updated_at"]
    list_filter = ["template", ("owner", admin.EmptyFieldListFilter)]
    search_fields = ["name", "description", "items__query"]
    list_select_related = ["owner", "template"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(items_total=Count("items"))

    @admin.display(description="items", ordering="items_total")
    def item_count(self, dataset) -> int:
        return dataset.items_total


class EvalResultInline(admin.TabularInline):
    model = EvalResult
    extra = 0
    can_delete = False
    fields = ["item", "status", "passed", "verdicts", "tokens_in", "tokens_out", "latency_ms", "error"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="checks")
    def verdicts(self, result: EvalResult) -> str:
        return ", ".join(f"{check['type']}: {check['verdict']}" for check in result.checks) or "—"


@admin.register(EvalRun)
class EvalRunAdmin(admin.ModelAdmin):
    inlines = [EvalResultInline]
    list_display = ["pk", "version", "dataset", "status", "progress_display", "pass_rate_display", "tokens_in",
                    "tokens_out", "latency_display", "owner", "created_at", "page"]
    list_filter = ["status", "version__template", "dataset"]
    list_select_related = ["version__template", "dataset", "owner"]
    readonly_fields = ["owner", "dataset", "version", "status", "concurrency", "provider", "model", "total", "done",
                       "passed", "errors", "tokens_in", "tokens_out", "latency_ms_total", "error", "created_at",
                       "started_at", "finished_at"]

    def has_add_permission(self, request) -> bool:
        return False  # runs are started from the eval page, the API or `manage.py prompts eval`

    @admin.display(description="progress")
    def progress_display(self, run: EvalRun) -> str:
        return f"{run.done}/{run.total}"

    @admin.display(description="pass rate")
    def pass_rate_display(self, run: EvalRun) -> str:
        return "—" if run.pass_rate is None else f"{run.pass_rate:.0%}"

    @admin.display(description="mean latency (ms)")
    def latency_display(self, run: EvalRun) -> str:
        return "—" if run.mean_latency_ms is None else f"{run.mean_latency_ms:.0f}"

    @admin.display(description="")
    def page(self, run: EvalRun) -> str:
        return format_html('<a href="{}">page</a>', reverse("page-eval-run", args=[run.pk]))


@admin.register(TaskFeedback)
class TaskFeedbackAdmin(admin.ModelAdmin):
    list_display = ["task", "user", "rating", "comment", "updated_at"]
    list_filter = ["rating", "updated_at"]
    search_fields = ["comment", "task__query", "user__username"]
    list_select_related = ["task", "user"]
    raw_id_fields = ["task"]
