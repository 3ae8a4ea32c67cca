"""`manage.py agent run`: creates a cli task, follows it, detaches on Ctrl-C."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tasks.models import Task


@pytest.mark.django_db
def test_no_wait_prints_the_task_id(user):
    out = StringIO()
    call_command("agent", "run", "Research the history of PostgreSQL", "--user", "alice", "--no-wait", stdout=out)
    task = Task.objects.get()
    assert f"task {task.id} queued" in out.getvalue()
    assert (task.trigger, task.owner, task.status) == ("cli", user, "queued")


@pytest.mark.django_db
def test_unknown_user_and_empty_query_are_refused(user):
    with pytest.raises(CommandError, match="no user named 'zed'"):
        call_command("agent", "run", "q", "--user", "zed", "--no-wait")
    with pytest.raises(CommandError, match="query must not be empty"):
        call_command("agent", "run", " ", "--user", "alice", "--no-wait")


@pytest.mark.django_db
def test_ctrl_c_detaches_without_cancelling(user, monkeypatch):
    from tasks.management.commands import agent

    def interrupted(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(agent.time, "sleep", interrupted)
    out = StringIO()
    call_command("agent", "run", "Research the history of PostgreSQL", "--user", "alice", stdout=out)
    task = Task.objects.get()
    assert f"detached; task {task.id} keeps running" in out.getvalue()
    task.refresh_from_db()
    assert task.status == "queued" and not task.cancel_requested


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_follows_a_run_to_its_result(agents_defaults, user, make_worker):
    make_worker()
    out = StringIO()
    call_command("agent", "run", "Compute the average of 12, 15 and 30", "--user", "alice", "--timeout", "60",
                 stdout=out)
    text = out.getvalue()
    assert "#0   trigger" in text and "#1   plan" in text and "data_analysis" in text
    assert "completed in" in text and "19" in text.split("completed in", 1)[1]
