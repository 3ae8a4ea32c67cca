"""Pages: your workspaces (members, your role) and a workspace's audit log (admins)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from agentos.api import ApplicationError, NotFound
from tasks.pages.views import page_context
from workspaces.access import Forbidden, may_edit_prompts, role_of, workspaces_for_user
from workspaces.models import Membership, Role
from workspaces.selectors import AUDIT_FILTERS, audit_events, workspace_get_for_user

EVENTS_PER_PAGE = 50


@login_required
@require_GET
def workspaces_page(request: HttpRequest) -> HttpResponse:
    rows = []
    for workspace in workspaces_for_user(user=request.user).order_by("name", "id"):
        role = role_of(request.user, workspace.pk)
        members = Membership.objects.filter(workspace=workspace).select_related("user").order_by("user__username")
        rows.append({"workspace": workspace, "role": role, "is_admin": role == Role.ADMIN, "members": members})
    return render(request, "workspaces/workspaces.html",
                  page_context(rows=rows, may_edit_prompts=may_edit_prompts(request.user)))


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
