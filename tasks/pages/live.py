"""Fragments for the live pages.

The browser listens on the websocket ``ws/tasks/<id>/`` only to learn *that* something
changed; it then asks these endpoints for the HTML, which the same templates as the full
page render. So a step looks the same whether it arrived live or with a reload, and a
client that missed messages (a dropped socket) catches up by asking for ``after=<the last
index it has>``.
"""

from __future__ import annotations

from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from agentos.api import error_body
from tasks.models import Step
from tasks.pages.timeline import render_group, subtasks_from, timeline_entries
from tasks.pages.views import render_panel, task_card, task_for, timeline_marks

MAX_STEPS_PER_RESPONSE = 100


def _after(request: HttpRequest) -> int | None:
    raw = request.GET.get("after", "-1")
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= -1 else None


@never_cache
@login_required
@require_GET
def task_live(request: HttpRequest, task_id: UUID) -> HttpResponse:
    """Steps after ``?after=N`` as HTML (with the group each one opens) plus the task panel."""
    from tasks.selectors import steps_after

    after = _after(request)
    if after is None:
        return JsonResponse(error_body("invalid", "after must be an integer >= -1", "after"), status=400)
    task = task_for(request, task_id)
    # One step more than asked for, before the first: it decides whether the first new step
    # continues the page's last group or opens a new one.
    window = list(steps_after(task=task, after=after - 1 if after >= 0 else None)[:MAX_STEPS_PER_RESPONSE + 1])
    previous = window[0] if window and window[0].index == after else None
    new_steps = [step for step in window if step.index > after][:MAX_STEPS_PER_RESPONSE]
    plan_rows = Step.objects.filter(task=task, kind="plan", status="ok").order_by("index")
    subtasks = subtasks_from([{"kind": s.kind, "status": s.status, "output": s.output} for s in plan_rows])
    entries = timeline_entries(new_steps, previous=previous, subtasks=subtasks, **timeline_marks(request, task))
    card = task_card(task)
    return JsonResponse({
        "status": task.status,
        "finished": card["finished"],
        "version": card["version"],
        "panel_html": render_panel(request, task),
        "steps": [
            {"index": entry["index"], "html": entry["html"],
             "group_html": render_group(entry["group"]) if entry["group"] else None}
            for entry in entries
        ],
        "more": len(new_steps) == MAX_STEPS_PER_RESPONSE,
    })


@never_cache
@login_required
@require_GET
def task_row(request: HttpRequest, task_id: UUID) -> HttpResponse:
    """One dashboard row, for live updates of status, progress and duration."""
    task = task_for(request, task_id)
    card = task_card(task)
    response = HttpResponse(render_to_string("pages/_task_row.html", {"card": card}, request=request))
    response["X-Task-Status"] = task.status
    response["X-Task-Finished"] = "1" if card["finished"] else "0"
    return response
