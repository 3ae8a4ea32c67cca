"""Schedules: the admin's friendly form manages the beat entry; beat's tick starts a task."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from tasks.models import Task
from triggers.errors import InvalidSchedule
from triggers.models import ScheduledQuery
from triggers.schedules import parse_crontab, scheduled_query_run, scheduled_query_save

ADD_URL = "/admin/triggers/scheduledquery/add/"


def form_data(owner, **overrides):
    data = {"name": "morning report", "owner": owner.pk, "query": "Summarise yesterday's tasks", "enabled": "on",
            "options": '{"allow_human": false}', "callback_url": "", "interval_minutes": "", "crontab": "",
            "_save": "Save"}
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.mark.django_db
def test_admin_form_creates_the_schedule_and_its_interval_beat_entry(staff_client, user):
    response = staff_client.post(ADD_URL, form_data(user, interval_minutes="15"))
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    schedule = ScheduledQuery.objects.get()
    assert (schedule.owner, schedule.query, schedule.options) == (user, "Summarise yesterday's tasks",
                                                                  {"allow_human": False})
    entry = schedule.periodic_task
    assert entry.task == "triggers.jobs.run_scheduled_query"
    assert json.loads(entry.args) == [schedule.pk]
    assert entry.enabled and entry.crontab is None
    assert (entry.interval.every, entry.interval.period) == (15, "minutes")


@pytest.mark.django_db
def test_admin_form_edits_switch_to_crontab_on_the_same_entry_and_disable_it(staff_client, user):
    staff_client.post(ADD_URL, form_data(user, interval_minutes="5"))
    schedule = ScheduledQuery.objects.get()
    entry_id = schedule.periodic_task_id
    page = staff_client.get(f"/admin/triggers/scheduledquery/{schedule.pk}/change/")
    assert page.context["adminform"].form.fields["interval_minutes"].initial == 5
    response = staff_client.post(f"/admin/triggers/scheduledquery/{schedule.pk}/change/",
                                 form_data(user, enabled=None, crontab="30 7 * * mon-fri"))
    assert response.status_code == 302
    entry = PeriodicTask.objects.get(pk=entry_id)
    assert entry.interval is None and not entry.enabled
    cron = entry.crontab
    assert (cron.minute, cron.hour, cron.day_of_month, cron.month_of_year, cron.day_of_week) == (
        "30", "7", "*", "*", "mon-fri")
    assert PeriodicTask.objects.filter(task="triggers.jobs.run_scheduled_query").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("minutes", "crontab", "message"), [
    ("", "", "either an interval"),
    ("5", "* * * * *", "either an interval"),
    ("", "61 * * * *", "invalid crontab"),
    ("", "* * *", "five fields"),
    ("0", "", "greater than or equal to 1"),
    (str(2**31), "", "less than or equal to 527040"),
    ("", "0 * * * " + ("mon,tue,wed,thu,fri,sat,sun," * 3)[:-1], "longer than 64 characters"),
])
def test_admin_form_refuses_a_bad_schedule_and_creates_nothing(staff_client, user, minutes, crontab, message):
    response = staff_client.post(ADD_URL, form_data(user, interval_minutes=minutes, crontab=crontab))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ScheduledQuery.objects.exists() and not PeriodicTask.objects.filter(
        task="triggers.jobs.run_scheduled_query").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value", "message"), [
    ("options", '{"step_budget": 1}', "options.step_budget: Ensure this value is greater than or equal to 5."),
    ("options", '{"no_such_option": 1}', "options.no_such_option: Unknown option"),
    ("options", '{"agents": ["nobody"]}', "options.agents: Unknown or disabled agents: nobody"),
    ("options", "[1, 2]", "options must be a JSON object"),
    ("query", "x" * 21, "query is longer than 20 characters"),
])
def test_admin_form_checks_options_and_query_like_the_api(staff_client, user, settings, field, value, message):
    settings.QUERY_MAX_LENGTH = 20
    response = staff_client.post(ADD_URL, form_data(user, interval_minutes="5", **{field: value}))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ScheduledQuery.objects.exists()


@pytest.mark.django_db
def test_deleting_the_schedule_in_the_admin_deletes_its_beat_entry(staff_client, user):
    staff_client.post(ADD_URL, form_data(user, interval_minutes="60"))
    schedule = ScheduledQuery.objects.get()
    entry_id = schedule.periodic_task_id
    response = staff_client.post(f"/admin/triggers/scheduledquery/{schedule.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not ScheduledQuery.objects.exists()
    assert not PeriodicTask.objects.filter(pk=entry_id).exists()


@pytest.mark.django_db
def test_the_admin_pages_need_staff(client, user):
    client.force_login(user)
    assert client.post(ADD_URL, form_data(user, interval_minutes="5")).status_code == 302  # to the login page
    assert not ScheduledQuery.objects.exists()


def test_crontab_parsing():
    assert parse_crontab("*/15 8-18 * * mon-fri") == {"minute": "*/15", "hour": "8-18", "day_of_month": "*",
                                                      "month_of_year": "*", "day_of_week": "mon-fri"}
    for bad in ["", "* * * *", "* * * * * *", "x * * * *", "* 25 * * *"]:
        with pytest.raises(InvalidSchedule):
            parse_crontab(bad)


@pytest.mark.django_db
def test_a_run_creates_a_schedule_task_and_a_disabled_schedule_creates_none(user):
    schedule = ScheduledQuery.objects.create(owner=user, name="nightly", query="What is 2 + 2?",
                                             callback_url="https://cb.example.com/n")
    task = scheduled_query_run(schedule_id=schedule.pk)
    assert (task.trigger, task.owner, task.query, task.callback_url) == ("schedule", user, "What is 2 + 2?",
                                                                         "https://cb.example.com/n")
    assert task.trigger_details["schedule_id"] == schedule.pk and task.trigger_details["schedule_name"] == "nightly"
    schedule.refresh_from_db()
    assert schedule.last_task_id == task.pk and schedule.last_run_at
    schedule.enabled = False
    schedule.save()
    assert scheduled_query_run(schedule_id=schedule.pk) is None
    assert scheduled_query_run(schedule_id=999999) is None
    assert Task.objects.count() == 1


@pytest.mark.django_db
def test_a_run_that_starts_no_task_is_recorded_on_the_schedule_until_a_run_does(staff_client, user):
    from tasks.models import AgentSpec
    from triggers.jobs import run_scheduled_query

    agent = AgentSpec.objects.create(name="digest", description="d", prompt_slug="agent-research")
    schedule = scheduled_query_save(schedule=ScheduledQuery(owner=user, name="nightly", query="Digest the day",
                                                            options={"agents": ["digest"]}), interval_minutes=60)
    AgentSpec.objects.filter(pk=agent.pk).update(enabled=False)  # since the schedule was saved

    assert run_scheduled_query.apply(args=[schedule.pk]).get() is None  # the job itself does not fail
    assert not Task.objects.exists()
    schedule.refresh_from_db()
    assert schedule.last_error.startswith("options.agents: Unknown or disabled agents: digest")
    assert schedule.last_error_at and schedule.last_run_at is None and schedule.last_task_id is None
    listing = staff_client.get("/admin/triggers/scheduledquery/").content.decode()
    assert "Unknown or disabled agents: digest" in listing
    page = staff_client.get(f"/admin/triggers/scheduledquery/{schedule.pk}/change/").content.decode()
    assert "Unknown or disabled agents: digest" in page

    AgentSpec.objects.filter(pk=agent.pk).update(enabled=True)
    task_id = run_scheduled_query.apply(args=[schedule.pk]).get()
    schedule.refresh_from_db()
    assert str(schedule.last_task_id) == task_id and schedule.last_run_at
    assert (schedule.last_error, schedule.last_error_at) == ("", None)
    assert "Unknown or disabled agents" not in staff_client.get("/admin/triggers/scheduledquery/").content.decode()


@pytest.mark.slow
def test_a_schedule_made_in_the_admin_fires_on_a_beat_tick(worker, defaults, staff_client, user):
    from django_celery_beat.schedulers import DatabaseScheduler

    from agentos.celery import app

    assert staff_client.post(ADD_URL, form_data(user, interval_minutes="1")).status_code == 302
    schedule = ScheduledQuery.objects.get()
    # As if beat had last run this entry two minutes ago: with a one-minute interval it is due.
    PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(
        last_run_at=timezone.now() - timedelta(minutes=2))
    assert not Task.objects.filter(trigger="schedule").exists()

    scheduler = DatabaseScheduler(app=app, lazy=False)
    try:
        deadline = time.monotonic() + 60
        while not Task.objects.filter(trigger="schedule").exists() and time.monotonic() < deadline:
            scheduler.tick()  # beat's own loop body: applies the entries that are due
            time.sleep(0.2)
    finally:
        scheduler.close()
    task = Task.objects.get(trigger="schedule")
    assert (task.owner, task.query) == (user, "Summarise yesterday's tasks")
    assert task.trigger_details["schedule_id"] == schedule.pk
    assert task.trigger_details["periodic_task"] == schedule.periodic_task.name
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).total_run_count >= 1
