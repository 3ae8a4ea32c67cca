"""Scheduled queries: the beat entry (django-celery-beat PeriodicTask) behind each one, and a run.

A ScheduledQuery owns exactly one PeriodicTask that calls
``triggers.jobs.run_scheduled_query(<id>)`` on an interval (minutes) or a crontab (UTC).
:func:`scheduled_query_save` is the only writer of that PeriodicTask; deleting the query
deletes it (triggers.signals).
"""

from __future__ import annotations

import json
from typing import Any

from celery.schedules import crontab as celery_crontab
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from triggers.errors import InvalidSchedule
from triggers.models import ScheduledQuery

JOB_NAME = "triggers.jobs.run_scheduled_query"
CRONTAB_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def parse_crontab(expression: str) -> dict[str, str]:
    """``"*/15 8-18 * * mon-fri"`` -> CrontabSchedule fields; raises InvalidSchedule."""
    parts = expression.split()
    if len(parts) != len(CRONTAB_FIELDS):
        raise InvalidSchedule("a crontab expression has five fields: minute hour day-of-month month day-of-week",
                              field="crontab")
    fields = dict(zip(CRONTAB_FIELDS, parts, strict=True))
    try:
        # Celery's own parser: what it accepts here is exactly what beat will run.
        celery_crontab(**fields)
    except (ValueError, TypeError, IndexError) as error:
        raise InvalidSchedule(f"invalid crontab expression: {error}", field="crontab")
    return fields


def describe(schedule: ScheduledQuery) -> str:
    entry = schedule.periodic_task
    if entry is None:
        return "not scheduled"
    if entry.interval_id:
        return f"every {entry.interval.every} {entry.interval.period}"
    if entry.crontab_id:
        cron = entry.crontab
        return f"cron {cron.minute} {cron.hour} {cron.day_of_month} {cron.month_of_year} {cron.day_of_week} (UTC)"
    return "not scheduled"


def _schedule_kwargs(*, interval_minutes: int | None, crontab: str | None) -> dict[str, Any]:
    crontab = (crontab or "").strip()
    if bool(interval_minutes) == bool(crontab):
        raise InvalidSchedule("give either an interval in minutes or a crontab expression (one of them)",
                              field="interval_minutes")
    if interval_minutes:
        if interval_minutes < 1:
            raise InvalidSchedule("the interval must be at least one minute", field="interval_minutes")
        interval, _ = IntervalSchedule.objects.get_or_create(every=interval_minutes, period=IntervalSchedule.MINUTES)
        return {"interval": interval, "crontab": None}
    cron, _ = CrontabSchedule.objects.get_or_create(**parse_crontab(crontab), timezone="UTC")
    return {"interval": None, "crontab": cron}


@transaction.atomic
def scheduled_query_save(*, schedule: ScheduledQuery, interval_minutes: int | None = None,
                         crontab: str | None = None) -> ScheduledQuery:
    """Save ``schedule`` and create or update the beat entry that runs it."""
    kwargs = _schedule_kwargs(interval_minutes=interval_minutes, crontab=crontab)
    schedule.save()
    entry = schedule.periodic_task or PeriodicTask(name=f"scheduled-query-{schedule.pk}")
    entry.task = JOB_NAME
    entry.args = json.dumps([schedule.pk])
    entry.enabled = schedule.enabled
    entry.description = f"Scheduled query {schedule.name!r} (managed by the triggers app)"
    entry.interval = kwargs["interval"]
    entry.crontab = kwargs["crontab"]
    entry.save()  # PeriodicTask.save bumps PeriodicTasks.last_update, so running beats reload
    if schedule.periodic_task_id != entry.pk:
        schedule.periodic_task = entry
        schedule.save(update_fields=["periodic_task", "updated_at"])
    return schedule


def scheduled_query_run(*, schedule_id: int):
    """Start one run of a scheduled query as a normal task (trigger "schedule"); None if disabled."""
    from triggers.services import triggered_task_create

    schedule = ScheduledQuery.objects.select_related("owner", "periodic_task").filter(pk=schedule_id).first()
    if schedule is None or not schedule.enabled or not schedule.owner.is_active:
        return None
    now = timezone.now()
    details = {
        "schedule_id": schedule.pk,
        "schedule_name": schedule.name,
        "periodic_task": schedule.periodic_task.name if schedule.periodic_task else None,
        "schedule": describe(schedule),
        "fired_at": now.isoformat(),
    }
    task = triggered_task_create(owner=schedule.owner, query=schedule.query, trigger="schedule", details=details,
                        options=schedule.options or {}, callback_url=schedule.callback_url,
                        workspace_id=schedule.workspace_id)
    ScheduledQuery.objects.filter(pk=schedule.pk).update(last_run_at=now, last_task_id=task.pk)
    return task
