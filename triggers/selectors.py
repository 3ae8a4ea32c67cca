"""Reads of a workspace's webhooks and schedules, for its operators and above (never a
secret: the callers choose what to show; triggers/api.py and the workspaces page)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet

from agentos.api import NotFound
from triggers.models import ScheduledQuery, Webhook
from workspaces.access import require_role
from workspaces.models import Role

# Who may read a workspace's webhooks and schedules (without their secrets); triggers.editing
# says who may change them.
READ_ROLE = Role.OPERATOR


def webhooks_of(*, user, workspace) -> QuerySet[Webhook]:
    require_role(user, workspace.pk, READ_ROLE, what="workspace")
    return Webhook.objects.filter(workspace=workspace).select_related("owner").order_by("name", "created_at")


def schedules_of(*, user, workspace) -> QuerySet[ScheduledQuery]:
    require_role(user, workspace.pk, READ_ROLE, what="workspace")
    return (ScheduledQuery.objects.filter(workspace=workspace)
            .select_related("owner", "periodic_task__interval", "periodic_task__crontab").order_by("name"))


def webhook_get(*, user, workspace, webhook_id, at_least: str = READ_ROLE) -> Webhook:
    """The workspace's webhook; NotFound for an unknown id or one of another workspace."""
    require_role(user, workspace.pk, at_least, what="workspace")
    try:
        return Webhook.objects.select_related("owner").get(pk=uuid.UUID(str(webhook_id)), workspace=workspace)
    except (Webhook.DoesNotExist, ValueError):
        raise NotFound("webhook not found") from None


def schedule_get(*, user, workspace, schedule_id, at_least: str = READ_ROLE) -> ScheduledQuery:
    require_role(user, workspace.pk, at_least, what="workspace")
    try:
        return (ScheduledQuery.objects.select_related("owner", "periodic_task__interval", "periodic_task__crontab")
                .get(pk=schedule_pk(schedule_id), workspace=workspace))
    except (ScheduledQuery.DoesNotExist, ValueError):
        raise NotFound("schedule not found") from None


def schedule_pk(value) -> int:
    """A schedule id from a URL: ValueError unless a positive bigint (so never a database error)."""
    pk = int(str(value))
    if not 0 < pk < 2**63:
        raise ValueError(value)
    return pk


def schedule_timing(schedule: ScheduledQuery) -> dict[str, Any]:
    """``{"interval_minutes", "crontab"}`` of the beat entry behind the schedule (one is None)."""
    entry = schedule.periodic_task
    if entry is not None and entry.interval_id and entry.interval.period == "minutes":
        return {"interval_minutes": entry.interval.every, "crontab": None}
    if entry is not None and entry.crontab_id:
        cron = entry.crontab
        return {"interval_minutes": None, "crontab": " ".join(
            [cron.minute, cron.hour, cron.day_of_month, cron.month_of_year, cron.day_of_week])}
    return {"interval_minutes": None, "crontab": None}
