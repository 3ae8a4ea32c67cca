"""Page views: the dashboard, a task's page and its controls.

Views only read through tasks.selectors and change state through tasks.services, the same
functions the REST API calls, so a page and the API can never disagree about what a pause
or an answer means.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from agentos.api import ApplicationError, NotFound
from agentos.llm import is_offline
from tasks.models import ACTIVE_STATUSES, FINISHED_STATUSES, Task, TaskStatus
from tasks.pages.forms import STATUS_FILTERS, STATUS_LABELS, NewTaskForm, RespondForm
from tasks.pages.markdown import render_markdown
from tasks.pages.timeline import pretty_json, render_timeline, subtasks_from, timeline_entries

TASKS_PER_PAGE = 25
PROVIDER_ERROR_STATUSES = (TaskStatus.WAITING_PROVIDER, TaskStatus.PAUSED, TaskStatus.FAILED)


def page_context(**extra) -> dict:
    return {"offline_llm": is_offline(), **extra}


def task_for(request: HttpRequest, task_id: UUID, at_least: str | None = None) -> Task:
    """The task if this user may see it (a member of its workspace, or staff), else 404 —
    never 403, which would leak it exists; 403 when ``at_least`` is a role the user lacks there."""
    from tasks.selectors import task_get_for_user
    from workspaces.access import Forbidden

    try:
        return task_get_for_user(user=request.user, task_id=task_id, at_least=at_least)
    except NotFound:
        raise Http404
    except Forbidden as error:
        raise PermissionDenied(error.message)


def format_duration(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return _("%(s)d s") % {"s": seconds}
    if seconds < 3600:
        return _("%(m)d min %(s)d s") % {"m": seconds // 60, "s": seconds % 60}
    return _("%(h)d h %(m)d min") % {"h": seconds // 3600, "m": seconds % 3600 // 60}


def task_card(task: Task) -> dict:
    """What a dashboard row and a task page header show about a task."""
    finished = task.status in FINISHED_STATUSES
    end = task.finished_at if finished and task.finished_at else timezone.now()
    return {
        "task": task,
        "status_label": STATUS_LABELS.get(task.status, task.status),
        "finished": finished,
        "duration": format_duration(end - task.created_at),
        "percent": round(max(0.0, min(1.0, task.progress or 0.0)) * 100),
        "last_index": task.step_count - 1,
        # Changes whenever anything shown in the panel or row may have changed.
        "version": f"{task.status}:{task.step_count}:{task.updated_at.timestamp():.6f}",
    }


def panel_context(task: Task, respond_form: RespondForm | None = None) -> dict:
    waiting = task.waiting_for if task.status == TaskStatus.WAITING_HUMAN and task.waiting_for else None
    return {
        **task_card(task),
        "can_pause": task.status in ACTIVE_STATUSES and not task.pause_requested,
        "pause_pending": task.pause_requested and task.status in ACTIVE_STATUSES,
        "can_resume": task.status == TaskStatus.PAUSED,
        "can_cancel": task.status not in FINISHED_STATUSES and not task.cancel_requested,
        "can_retry": task.status == TaskStatus.FAILED,
        "provider_error": task.provider_error if task.status in PROVIDER_ERROR_STATUSES else None,
        "waiting": waiting,
        "is_approval": bool(waiting and waiting.get("tool_call")),
        "tool_call_json": pretty_json(waiting["tool_call"]) if waiting and waiting.get("tool_call") else "",
        "respond_form": respond_form or RespondForm(),
        "result_html": render_markdown(task.result) if task.result else "",
    }


def render_panel(request: HttpRequest, task: Task) -> str:
    return render_to_string("pages/_task_panel.html", panel_context(task), request=request)


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    return _render_dashboard(request, NewTaskForm())


def _render_dashboard(request: HttpRequest, form: NewTaskForm, status: int = 200) -> HttpResponse:
    from tasks.selectors import tasks_for_user

    wanted = request.GET.get("status", "")
    if wanted not in dict(STATUS_FILTERS):
        wanted = ""
    tasks = tasks_for_user(user=request.user, status=wanted or None)
    page = Paginator(tasks, TASKS_PER_PAGE).get_page(request.GET.get("page"))
    from workspaces.access import default_workspace, workspaces_for_user

    # Where a new task may go: shown as a choice when there is more than one.
    workspaces = list(workspaces_for_user(user=request.user, at_least="operator").order_by("name")[:100])
    from workspaces.selectors import tasks_waiting_for

    waiting, waiting_total = tasks_waiting_for(user=request.user)
    context = page_context(
        waiting=[{**task_card(task), "request": task.waiting_for or {}} for task in waiting],
        waiting_more=waiting_total - len(waiting),
        form=form, page=page, cards=[task_card(task) for task in page.object_list],
        status_filters=STATUS_FILTERS, current_status=wanted,
        workspaces=workspaces if len(workspaces) > 1 else [], default_workspace=default_workspace(request.user).pk,
    )
    return render(request, "pages/dashboard.html", context, status=status)


@login_required
@require_POST
def task_new(request: HttpRequest) -> HttpResponse:
    from workspaces.access import Forbidden
    from workspaces.task_actions import task_create_as

    form = NewTaskForm(request.POST)
    if not form.is_valid():
        return _render_dashboard(request, form, status=400)
    try:
        task = task_create_as(actor=request.user, workspace_id=request.POST.get("workspace") or None,
                              query=form.cleaned_data["query"], trigger="page",
                              trigger_details={"page": "dashboard"}, options=form.options())
    except Forbidden as error:
        raise PermissionDenied(error.message)
    except NotFound as error:  # a workspace the user is not in
        raise Http404(error.message)
    except ApplicationError as error:
        form.add_error(None, error.message)
        return _render_dashboard(request, form, status=400)
    return redirect("page-task", task_id=task.id)


@login_required
@require_GET
def task_detail(request: HttpRequest, task_id: UUID) -> HttpResponse:
    from tasks.selectors import steps_after

    task = task_for(request, task_id)
    steps = list(steps_after(task=task, after=None))
    subtasks = subtasks_from([{"kind": s.kind, "status": s.status, "output": s.output} for s in steps])
    entries = timeline_entries(steps, previous=None, subtasks=subtasks, **timeline_marks(request, task))
    context = page_context(
        **panel_context(task),
        groups=render_timeline(entries),
        forks=list(task.forks.filter(workspace_id=task.workspace_id).order_by("created_at")[:50]),
        live={"task_id": str(task.id), "last_index": steps[-1].index if steps else -1,
              "finished": task.status in FINISHED_STATUSES},
    )
    return render(request, "pages/task_detail.html", context)


def timeline_marks(request: HttpRequest, task: Task) -> dict:
    """Time travel on the timeline: "continue from here" links (owner only) and the step a
    fork edited."""
    from django.urls import reverse

    from workspaces.access import role_of
    from workspaces.models import role_at_least

    edit = task.fork_edit if isinstance(task.fork_edit, dict) else {}
    edited = edit.get("step") if edit.get("kind") == "output" else None
    if edit.get("kind") == "answer" and isinstance(edit.get("step"), int):
        edited = edit["step"] + 1  # the answer follows the question it was forked at
    may_fork = role_at_least(role_of(request.user, task.workspace_id), "operator")
    fork_url = reverse("page-task-fork", args=[task.id]) if may_fork else None
    # A finished task's last step has nothing after it to continue differently.
    fork_before = task.step_count - 1 if task.status in FINISHED_STATUSES else None
    return {"fork_url": fork_url, "edited_step": edited, "fork_before": fork_before}


CONTROLS = {"pause": "task_pause", "resume": "task_resume", "cancel": "task_cancel", "retry": "task_retry"}
CONTROL_DONE = {
    "pause": gettext_lazy("Pause requested; the task stops after the step in progress."),
    "resume": gettext_lazy("Resumed."),
    "cancel": gettext_lazy("Cancelled."),
    "retry": gettext_lazy("Retrying from the last good step."),
}


@login_required
@require_POST
def task_control(request: HttpRequest, task_id: UUID, action: str) -> HttpResponse:
    from workspaces.task_actions import task_act

    if action not in CONTROLS:
        raise Http404
    task = task_for(request, task_id, at_least="operator")
    try:
        task_act(actor=request.user, task=task, action=action)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, str(CONTROL_DONE[action]))
    return redirect("page-task", task_id=task.id)


@login_required
@require_POST
def task_respond(request: HttpRequest, task_id: UUID) -> HttpResponse:
    from workspaces.task_actions import task_act

    task = task_for(request, task_id, at_least="operator")
    form = RespondForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("page-task", task_id=task.id)
    decision = form.cleaned_data.get("decision")
    try:
        if decision:
            task_act(actor=request.user, task=task, action="respond", approve=decision == "approve",
                     comment=form.cleaned_data.get("comment", ""))
        else:
            task_act(actor=request.user, task=task, action="respond", answer=form.cleaned_data["answer"])
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Thank you; the task continues."))
    return redirect("page-task", task_id=task.id)
