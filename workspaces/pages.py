"""Pages: your workspaces (members, your role, webhooks and schedules) and a workspace's
audit log (admins). Admins create and delete webhooks and schedules from forms on the
workspaces page, through the same service as the API (triggers.editing)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from agentos.api import ApplicationError, NotFound
from agentos.jsonguard import JSONRejected, parse_json
from tasks.pages.views import page_context
from workspaces.access import Forbidden, may_edit_prompts, role_of, workspaces_for_user
from workspaces.models import Membership, Role, role_at_least
from workspaces.selectors import AUDIT_FILTERS, audit_events, workspace_get_for_user

EVENTS_PER_PAGE = 50


def _rows(user) -> list[dict]:
    from triggers import selectors

    rows = []
    for workspace in workspaces_for_user(user=user).order_by("name", "id"):
        role = role_of(user, workspace.pk)
        members = Membership.objects.filter(workspace=workspace).select_related("user").order_by("user__username")
        row = {"workspace": workspace, "role": role, "is_admin": role == Role.ADMIN, "members": members,
               "sees_triggers": role_at_least(role, selectors.READ_ROLE)}
        if row["sees_triggers"]:
            row["webhooks"] = list(selectors.webhooks_of(user=user, workspace=workspace))
            row["schedules"] = [{"schedule": schedule, "timing": selectors.schedule_timing(schedule)}
                                for schedule in selectors.schedules_of(user=user, workspace=workspace)]
        rows.append(row)
    return rows


def _render(request: HttpRequest, *, status: int = 200, **extra) -> HttpResponse:
    response = render(request, "workspaces/workspaces.html",
                      page_context(rows=_rows(request.user), may_edit_prompts=may_edit_prompts(request.user),
                                   **extra), status=status)
    response["Cache-Control"] = "no-store"  # it may show a new webhook's secret
    return response


@login_required
@require_GET
def workspaces_page(request: HttpRequest) -> HttpResponse:
    return _render(request)


def _admin_workspace(request: HttpRequest, workspace_id: int):
    """The workspace if the caller is its admin: 404 outside their workspaces, 403 below admin."""
    from triggers import editing

    try:
        return workspace_get_for_user(user=request.user, workspace_id=workspace_id, at_least=editing.WRITE_ROLE)
    except NotFound:
        raise Http404
    except Forbidden as error:
        raise PermissionDenied(error.message)


def _refused(request: HttpRequest, workspace, form: str, error: ApplicationError) -> HttpResponse:
    """The page again, with the form's problem next to it (400)."""
    return _render(request, status=400, form_error={"workspace": workspace.pk, "form": form,
                                                    "field": error.field, "message": error.message},
                   form_values={"workspace": workspace.pk, "form": form, **request.POST.dict()})


def _json_field(request: HttpRequest, name: str):
    """The form field's JSON, by the rules of the API's bodies (agentos.jsonguard): too deep
    nesting, numbers that are not finite and unstorable text are the form's error, not a 500."""
    text = request.POST.get(name, "").strip()
    if not text:
        return {}
    try:
        return parse_json(text)
    except JSONRejected as error:
        if error.code == "parse_error":
            raise ApplicationError(_("%(field)s must be a JSON object") % {"field": name}, field=name) from None
        field = f"{name}.{error.field}" if error.field else name
        raise ApplicationError(error.message, field=field, code=error.code) from None


def _minutes(request: HttpRequest):
    text = request.POST.get("interval_minutes", "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ApplicationError(_("interval_minutes must be a whole number of minutes"),
                               field="interval_minutes") from None


@login_required
@require_POST
def webhook_create(request: HttpRequest, workspace_id: int) -> HttpResponse:
    from triggers import editing

    workspace = _admin_workspace(request, workspace_id)
    try:
        data = {"name": request.POST.get("name", ""), "query_template": request.POST.get("query_template", ""),
                "callback_url": request.POST.get("callback_url", ""), "options": _json_field(request, "options")}
        webhook = editing.webhook_create(actor=request.user, workspace=workspace, data=data)
    except ApplicationError as error:
        return _refused(request, workspace, "webhook", error)
    # Shown once, on this answer (not kept in the session): the sender needs it to sign.
    return _render(request, new_webhook=webhook,
                   new_webhook_url=request.build_absolute_uri(f"/hooks/{webhook.pk}/"))


@login_required
@require_POST
def webhook_delete(request: HttpRequest, workspace_id: int, webhook_id) -> HttpResponse:
    from triggers import editing

    workspace = _admin_workspace(request, workspace_id)
    try:
        editing.webhook_delete(actor=request.user, workspace=workspace, webhook_id=webhook_id)
    except NotFound:
        raise Http404
    messages.success(request, _("The webhook was deleted."))
    return redirect("page-workspaces")


@login_required
@require_POST
def schedule_create(request: HttpRequest, workspace_id: int) -> HttpResponse:
    from triggers import editing

    workspace = _admin_workspace(request, workspace_id)
    try:
        data = {"name": request.POST.get("name", ""), "query": request.POST.get("query", ""),
                "interval_minutes": _minutes(request), "crontab": request.POST.get("crontab", ""),
                "callback_url": request.POST.get("callback_url", ""), "options": _json_field(request, "options")}
        editing.schedule_create(actor=request.user, workspace=workspace, data=data)
    except ApplicationError as error:
        return _refused(request, workspace, "schedule", error)
    messages.success(request, _("The schedule was created."))
    return redirect("page-workspaces")


@login_required
@require_POST
def schedule_delete(request: HttpRequest, workspace_id: int, schedule_id: int) -> HttpResponse:
    from triggers import editing

    workspace = _admin_workspace(request, workspace_id)
    try:
        editing.schedule_delete(actor=request.user, workspace=workspace, schedule_id=schedule_id)
    except NotFound:
        raise Http404
    messages.success(request, _("The schedule was deleted."))
    return redirect("page-workspaces")


@login_required
@require_GET
def audit_page(request: HttpRequest, workspace_id: int) -> HttpResponse:
    try:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id, at_least=Role.ADMIN)
    except NotFound:
        raise Http404
    except Forbidden as error:
        raise PermissionDenied(error.message)
    filters = {name: request.GET.get(name, "").strip() for name in AUDIT_FILTERS}
    error = None
    try:
        events = audit_events(workspace=workspace, filters=filters)
        page = Paginator(events, EVENTS_PER_PAGE).get_page(request.GET.get("page"))
        list(page)  # a bad date is found here, not in the template
    except ApplicationError as problem:
        error, page = problem.message, None
    query = urlencode({name: value for name, value in filters.items() if value})
    return render(request, "workspaces/audit.html",
                  page_context(workspace=workspace, filters=filters, page=page, error=error, query=query),
                  status=400 if error else 200)
