"""Scheduled queries: the beat entry (django-celery-beat PeriodicTask) behind each one, and a run.

A ScheduledQuery owns exactly one PeriodicTask that calls
``triggers.jobs.run_scheduled_query(<id>)`` on an interval (minutes) or a crontab (UTC).
:func:`scheduled_query_save` is the only writer of that PeriodicTask; deleting the query
deletes it (triggers.signals). A run that starts no task says why on the schedule
(``last_error``, ``last_error_at``) until a later run starts one.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from celery.schedules import crontab as celery_crontab
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from agentos.api import ApplicationError
from triggers.errors import InvalidSchedule
from triggers.models import ScheduledQuery

logger = logging.getLogger(__name__)

JOB_NAME = "triggers.jobs.run_scheduled_query"
# The crontab fields, named as Celery's crontab() and django-celery-beat's CrontabSchedule name them.
CRONTAB_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
# A leap year: IntervalSchedule.every would take more (up to 2**31 - 1), beat has no use for it.
INTERVAL_MAX_MINUTES = 527_040


def parse_crontab(expression: str) -> dict[str, str]:
    """``"*/15 8-18 * * mon-fri"`` -> CrontabSchedule fields; raises InvalidSchedule."""
    parts = expression.split()
    if len(parts) != len(CRONTAB_FIELDS):
        raise InvalidSchedule("a crontab expression has five fields: minute hour day-of-month month day-of-week",
                              field="crontab")
    fields = dict(zip(CRONTAB_FIELDS, parts, strict=True))
    for name, value in fields.items():
        # What Celery accepts may still be longer than the column that stores it.
        limit = CrontabSchedule._meta.get_field(name).max_length
        if len(value) > limit:
            raise InvalidSchedule(f"the {name.replace('_', '-')} field of a crontab expression is longer than "
                                  f"{limit} characters", field="crontab")
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
        if interval_minutes > INTERVAL_MAX_MINUTES:
            raise InvalidSchedule(f"the interval must be at most a year ({INTERVAL_MAX_MINUTES} minutes)",
                                  field="interval_minutes")
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
    """Start one run of a scheduled query as a normal task (trigger "schedule").

    None when there is nothing to run (an unknown or disabled schedule) or when the run is
    refused: its owner may no longer start tasks in its workspace
    (:func:`triggers.services.owner_start_problem`), or ``task_create`` refuses it (e.g. an
    agent named in its options has been disabled since). A refused run is recorded on the
    schedule (``last_error``, ``last_error_at``); the next run that starts a task clears it.
    """
    from triggers.services import owner_start_problem, triggered_task_create

    schedule = ScheduledQuery.objects.select_related("owner", "periodic_task").filter(pk=schedule_id).first()
    if schedule is None or not schedule.enabled:
        return None
    now = timezone.now()
    problem = owner_start_problem(owner=schedule.owner, workspace_id=schedule.workspace_id)
    if problem:
        _run_refused(schedule, now, problem)
        return None
    details = {
        "schedule_id": schedule.pk,
        "schedule_name": schedule.name,
        "periodic_task": schedule.periodic_task.name if schedule.periodic_task else None,
        "schedule": describe(schedule),
        "fired_at": now.isoformat(),
    }
    try:
        with transaction.atomic():
            task = triggered_task_create(owner=schedule.owner, query=schedule.query, trigger="schedule",
                                         details=details, options=schedule.options or {},
                                         callback_url=schedule.callback_url, workspace_id=schedule.workspace_id)
    except ApplicationError as error:
        _run_refused(schedule, now, f"{error.field}: {error.message}" if error.field else error.message)
        return None
    ScheduledQuery.objects.filter(pk=schedule.pk).update(last_run_at=now, last_task_id=task.pk, last_error="",
                                                         last_error_at=None)
    return task


def _run_refused(schedule: ScheduledQuery, when, reason: str) -> None:
    logger.warning("scheduled query %s (%r) started no task: %s", schedule.pk, schedule.name, reason)
    ScheduledQuery.objects.filter(pk=schedule.pk).update(last_error=reason, last_error_at=when)
