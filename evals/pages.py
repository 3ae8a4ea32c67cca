"""Server-rendered pages: eval runs (start one, watch its progress), the comparison of two
runs, and the feedback form of a task. Reads through evals.selectors, writes through
evals.services, exactly as the API does."""

from __future__ import annotations

from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from agentos.api import ApplicationError, NotFound
from agentos.llm import is_offline
from evals import services
from evals.models import TaskFeedback
from evals.report import failed_checks, run_summary
from evals.selectors import (
    compare_runs,
    dataset_get_for_run,
    dataset_get_for_user,
    datasets_for_user,
    eval_run_get_for_user,
    eval_runs_for_user,
    run_results,
)
from prompts.models import PromptVersion

RUNS_SHOWN = 50


def _context(**extra) -> dict:
    return {"offline_llm": is_offline(), **extra}


class StartRunForm(forms.Form):
    dataset = forms.TypedChoiceField(coerce=int)
    version = forms.TypedChoiceField(coerce=int, label="Prompt version")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].choices = [(d.pk, f"{d.name}" + (f" ({d.template.slug})" if d.template else ""))
                                          for d in datasets_for_user(user=user)]
        self.fields["version"].choices = [
            (v.pk, v.label + (" (active)" if v.is_active else ""))
            for v in PromptVersion.objects.select_related("template").order_by("template__slug", "-number")]


@login_required
@require_http_methods(["GET", "POST"])
def evals_page(request: HttpRequest) -> HttpResponse:
    from workspaces.access import Forbidden

    form = StartRunForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            # Operators and above of the run's workspace (403 below; 404 for a dataset not theirs).
            dataset = dataset_get_for_run(user=request.user, dataset_id=form.cleaned_data["dataset"])
            version = PromptVersion.objects.select_related("template").get(pk=form.cleaned_data["version"])
            run = services.eval_run_create(owner=request.user, dataset=dataset, version=version)
        except Forbidden as error:
            raise PermissionDenied(error.message)
        except NotFound:
            raise Http404
        except ApplicationError as error:
            form.add_error(None, error.message)
        else:
            return redirect("page-eval-run", run_id=run.pk)
    runs = list(eval_runs_for_user(user=request.user)[:RUNS_SHOWN])
    return render(request, "evals/evals.html", _context(form=form, runs=runs,
                                                        datasets=datasets_for_user(user=request.user)))


def _run_for(request: HttpRequest, run_id) -> object:
    try:
        return eval_run_get_for_user(user=request.user, run_id=run_id)
    except NotFound:
        raise Http404


def _result_rows(results) -> list[dict]:
    return [{"result": result, "failed": failed_checks(result)} for result in results]


@login_required
def run_page(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_for(request, run_id)
    return render(request, "evals/run.html", _context(
        run=run, summary=run_summary(run), percent=round(run.progress * 100),
        rows=_result_rows(run_results(run=run)), others=eval_runs_for_user(user=request.user).filter(
            dataset=run.dataset, status="completed").exclude(pk=run.pk)[:20]))


@login_required
def compare_page(request: HttpRequest) -> HttpResponse:
    a, b = _run_for(request, request.GET.get("a")), _run_for(request, request.GET.get("b"))
    rows = [{"item": row, "a_failed": failed_checks(row.a), "b_failed": failed_checks(row.b)}
            for row in compare_runs(a=a, b=b)]
    return render(request, "evals/compare.html", _context(
        a=a, b=b, summaries=[run_summary(a), run_summary(b)], rows=rows,
        differing=sum(1 for row in rows if row["item"].differs)))


class FeedbackForm(forms.Form):
    rating = forms.ChoiceField(choices=[("up", "👍"), ("down", "👎")], widget=forms.RadioSelect)
    comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))


class AddToDatasetForm(forms.Form):
    dataset = forms.TypedChoiceField(coerce=int)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].choices = [(d.pk, d.name) for d in datasets_for_user(user=user)
                                          if d.owner_id == user.pk]


def _task_for(request: HttpRequest, task_id: UUID):
    from tasks.selectors import task_get_for_user

    try:
        return task_get_for_user(user=request.user, task_id=task_id)
    except NotFound:
        raise Http404


@login_required
@require_http_methods(["GET", "POST"])
def feedback_page(request: HttpRequest, task_id: UUID) -> HttpResponse:
    task = _task_for(request, task_id)
    mine = TaskFeedback.objects.filter(task=task, user=request.user).first()
    initial = {"rating": "up" if mine.rating > 0 else "down", "comment": mine.comment} if mine else None
    form = FeedbackForm(initial=initial)
    add_form = AddToDatasetForm(user=request.user)
    if request.method == "POST" and request.POST.get("action") == "add":
        add_form = AddToDatasetForm(request.POST, user=request.user)
        if add_form.is_valid():
            try:
                dataset = dataset_get_for_user(user=request.user, dataset_id=add_form.cleaned_data["dataset"],
                                               write=True)
                services.dataset_item_from_task(user=request.user, task=task, dataset=dataset)
            except ApplicationError as error:
                add_form.add_error(None, error.message)
            else:
                messages.success(request, f"Added to {dataset.name}.")
                return redirect("page-task-feedback", task_id=task.pk)
    elif request.method == "POST":
        form = FeedbackForm(request.POST)
        if form.is_valid():
            services.task_feedback_set(user=request.user, task=task,
                                       rating=1 if form.cleaned_data["rating"] == "up" else -1,
                                       comment=form.cleaned_data["comment"])
            messages.success(request, "Thank you: your feedback is saved.")
            return redirect("page-task-feedback", task_id=task.pk)
    return render(request, "evals/feedback.html", _context(task=task, form=form, mine=mine, add_form=add_form))
