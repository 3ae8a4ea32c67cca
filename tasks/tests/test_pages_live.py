"""The live fragments: what the browser fetches when the websocket says something changed."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tasks.tests.test_pages import add_step, full_run, make_task

pytestmark = pytest.mark.django_db


def live(client, task, after) -> dict:
    response = client.get(reverse("page-task-live", args=[task.id]), {"after": after})
    assert response.status_code == 200, response.content
    assert response["Cache-Control"].startswith("max-age=0")
    return response.json()


def test_live_returns_only_steps_after_the_cursor(client, user):
    client.force_login(user)
    task = make_task(user)
    full_run(task)
    data = live(client, task, 5)
    assert [step["index"] for step in data["steps"]] == [6, 7, 8]
    assert data["status"] == "running" and data["finished"] is False
    assert 'id="task-panel"' in data["panel_html"]
    assert live(client, task, 8)["steps"] == []


def test_a_step_opens_a_group_only_when_its_subtask_changes(client, user):
    client.force_login(user)
    task = make_task(user)
    full_run(task)
    steps = live(client, task, -1)["steps"]
    opens = [bool(step["group_html"]) for step in steps]
    # plan | s1: llm tool request response | s2: tool summary | synthesis result
    assert opens == [True, True, False, False, False, True, False, True, False]
    # Resuming mid-group (after=2) continues the page's last group instead of opening one.
    assert live(client, task, 2)["steps"][0]["group_html"] is None
    assert live(client, task, 4)["steps"][0]["group_html"] is not None


def test_live_fragments_are_the_page_markup(client, user):
    """One renderer: a step fetched live is byte-for-byte the step in a reloaded page."""
    client.force_login(user)
    task = make_task(user)
    full_run(task)
    page = client.get(reverse("page-task", args=[task.id])).content.decode()
    for step in live(client, task, -1)["steps"]:
        assert step["html"] in page, step["index"]
        if step["group_html"]:
            empty_group = step["group_html"]
            head = empty_group[: empty_group.index('<ol class="steps">')]
            assert head in page


def test_live_rejects_a_bad_cursor_with_the_error_shape(client, user):
    client.force_login(user)
    task = make_task(user)
    for bad in ("x", "-2", "1.5"):
        response = client.get(reverse("page-task-live", args=[task.id]), {"after": bad})
        assert response.status_code == 400
        assert response.json()["error"]["field"] == "after"


def test_panel_version_changes_with_the_task(client, user):
    client.force_login(user)
    task = make_task(user)
    before = live(client, task, -1)["version"]
    add_step(task, "llm", subtask="s1", agent="research", output={"action": "finish", "result": "ok"})
    task.status = "completed"
    task.save()
    data = live(client, task, -1)
    assert data["version"] != before and data["finished"] is True and data["status"] == "completed"


def test_row_fragment(client, user, other_user):
    client.force_login(user)
    task = make_task(user, progress=0.5)
    response = client.get(reverse("page-task-row", args=[task.id]))
    html = response.content.decode()
    assert response.status_code == 200 and response["X-Task-Status"] == "running"
    assert html.startswith("<li") and f'id="task-{task.id}"' in html and 'value="50"' in html
    assert re.search(r'data-finished="0"', html)
    client.force_login(other_user)
    assert client.get(reverse("page-task-row", args=[task.id])).status_code == 404
