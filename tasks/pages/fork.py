"""The "continue from here" page: fork a task at a step (tasks/timetravel/fork.py).

GET shows the step and, for a question, an answer field, for a model step its output to
correct; POST creates the fork through the same service as the API and opens its page.
Operators of the task's workspace reach this page (viewers: 403, anyone else: 404).
"""

from __future__ import annotations

from uuid import UUID

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from agentos.api import ApplicationError
from agentos.jsonguard import JSONRejected, parse_json
from tasks.models import Step
from tasks.pages.timeline import pretty_json, subtasks_from, timeline_entries
from tasks.pages.views import page_context, task_for
from tasks.timetravel.fork import MODEL_KINDS, UNSET
from workspaces.task_actions import task_act


class ForkForm(forms.Form):
    at = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    answer = forms.CharField(label=_("A different answer (optional)"), required=False, max_length=4000,
                             widget=forms.Textarea(attrs={"rows": 2}))
    output = forms.CharField(label=_("The model's output (JSON; edit it to record a correction)"), required=False,
                             max_length=100_000, widget=forms.Textarea(attrs={"rows": 10, "class": "json"}))


def _step(task, request: HttpRequest) -> Step:
    try:
        at = int(request.POST.get("at", request.GET.get("at", "")))
    except ValueError:
        raise Http404
    step = Step.objects.filter(task=task, index=at).first()
    if step is None:
        raise Http404
    return step


@login_required
@require_http_methods(["GET", "POST"])
def task_fork_page(request: HttpRequest, task_id: UUID) -> HttpResponse:
    task = task_for(request, task_id, at_least="operator")
    step = _step(task, request)
    original = pretty_json(step.output) if step.kind in MODEL_KINDS and step.output is not None else ""
    form = ForkForm(request.POST or None, initial={"at": step.index, "output": original})
    if request.method == "POST" and form.is_valid():
        answer = form.cleaned_data["answer"].strip() or None if step.kind == "human_request" else None
        output = UNSET
        text = form.cleaned_data["output"].strip() if step.kind in MODEL_KINDS else ""
        try:
            if text and text != original.strip():
                try:
                    output = parse_json(text)
                except JSONRejected as error:
                    raise ApplicationError(error.message, field="output") from None
            fork = task_act(actor=request.user, task=task, action="fork", at=step.index, answer=answer,
                            output=output)
        except ApplicationError as error:
            form.add_error(error.field if error.field in ("answer", "output") else None, error.message)
        else:
            return redirect("page-task", task_id=fork.id)
    subtasks = subtasks_from([{"kind": s.kind, "status": s.status, "output": s.output}
                              for s in Step.objects.filter(task=task, kind="plan", status="ok")])
    entry = timeline_entries([step], previous=None, subtasks=subtasks)[0]
    context = page_context(task=task, step=step, step_html=entry["html"], form=form,
                           asks_answer=step.kind == "human_request", edits_output=bool(original))
    return render(request, "pages/task_fork.html", context, status=400 if form.errors else 200)
