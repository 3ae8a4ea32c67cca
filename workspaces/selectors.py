"""Reads of the workspaces app: a workspace for its members, and its audit log (admins)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from agentos.api import ApplicationError, NotFound, text_param
from workspaces.access import is_superuser, member_workspace_ids, require_role, scope
from workspaces.models import AuditEvent, Role, Workspace

AUDIT_FILTERS = ("action", "actor", "target_type", "target_id", "since", "until")


def workspace_get_for_user(*, user, workspace_id, at_least: str = Role.VIEWER) -> Workspace:
    """The workspace if ``user`` is a member (NotFound otherwise) with at least ``at_least``
    (Forbidden otherwise)."""
    try:
        workspace = scope(Workspace.objects.all(), user, field="pk").get(pk=int(workspace_id))
    except (Workspace.DoesNotExist, TypeError, ValueError):
        raise NotFound("workspace not found")
    require_role(user, workspace.pk, at_least, what="workspace")
    return workspace


# Workspace names for task objects (every step event carries its task): id -> (name, until).
_NAMES: dict[int, tuple[str, float]] = {}
NAME_TTL_SECONDS = 30.0


def workspace_name(workspace_id: int) -> str:
    """The workspace's name, remembered by this process for NAME_TTL_SECONDS (a rename shows
    within that time; this process's own renames at once), so a worker committing steps
    does not ask the database for it on every event."""
    now = time.monotonic()
    cached = _NAMES.get(workspace_id)
    if cached is not None and cached[1] > now:
        return cached[0]
    name = Workspace.objects.filter(pk=workspace_id).values_list("name", flat=True).first() or ""
    if len(_NAMES) > 1000:
        _NAMES.clear()
    _NAMES[workspace_id] = (name, now + NAME_TTL_SECONDS)
    return name


def workspace_name_forget(workspace_id: int) -> None:
    _NAMES.pop(workspace_id, None)


WAITING_SHOWN = 20


def tasks_waiting_for(*, user, limit: int = WAITING_SHOWN) -> tuple[list, int]:
    """Tasks waiting for a person (a question or a tool call to approve) that ``user`` may
    answer: those of the workspaces where they are an operator or higher (staff: all), the
    longest-waiting first; at most ``limit`` of them, and how many there are in all."""
    from tasks.models import Task, TaskStatus

    tasks = Task.objects.filter(status=TaskStatus.WAITING_HUMAN, waiting_for__isnull=False)
    if not is_superuser(user):
        tasks = tasks.filter(workspace__in=member_workspace_ids(user, at_least=Role.OPERATOR))
    total = tasks.count()
    shown = list(tasks.select_related("workspace", "owner").order_by("updated_at", "id")[:limit]) if total else []
    return shown, total


def _moment(value: str, field: str) -> datetime:
    """``value`` (ISO 8601) as a moment in UTC, or a 400 naming ``field`` for text that is no
    date and time, is well formed yet no real one (``2024-13-01T00:00``, ``2024-02-30T00:00``,
    an offset of a day or more), or is outside the years 1-9999 once in UTC
    (``9999-12-31T23:59-23:00``). PostgreSQL refuses offsets beyond 15 hours, which ISO 8601
    allows, so the moment goes to it in UTC. Without an offset: the server's TIME_ZONE."""
    try:
        moment = parse_datetime(value)
    except ValueError:
        moment = None
    if moment is None:
        raise ApplicationError(f"{field} must be an ISO 8601 date and time", field=field)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ApplicationError(f"{field} is out of range", field=field) from None


def audit_events(*, workspace: Workspace, filters: dict | None = None) -> QuerySet[AuditEvent]:
    """The workspace's audit events, newest first, narrowed by ``filters`` (action: a prefix
    such as "task." or a full action; actor: a user name; since/until: ISO 8601)."""
    events = AuditEvent.objects.filter(workspace=workspace)
    filters = {key: text_param(value, key) for key, value in (filters or {}).items()
               if key in AUDIT_FILTERS and value}
    if "action" in filters:
        action = filters["action"]
        events = events.filter(action__startswith=action) if action.endswith(".") else events.filter(action=action)
    if "actor" in filters:
        events = events.filter(actor=filters["actor"])
    if "target_type" in filters:
        events = events.filter(target_type=filters["target_type"])
    if "target_id" in filters:
        events = events.filter(target_id=filters["target_id"])
    if "since" in filters:
        events = events.filter(created_at__gte=_moment(filters["since"], "since"))
    if "until" in filters:
        events = events.filter(created_at__lt=_moment(filters["until"], "until"))
    return events.order_by("-created_at", "-id")


def audit_event_to_dict(event: AuditEvent) -> dict:
    return {"id": event.pk, "at": event.created_at.isoformat(), "actor": event.actor, "actor_id": event.actor_id,
            "action": event.action, "target_type": event.target_type, "target_id": event.target_id,
            "before": event.before, "after": event.after}
