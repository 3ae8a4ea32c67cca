"""Time travel on the pages: "continue from here" on each step (owner only), the fork page,
and parent/fork links on the task page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.models import Step, Task
from tasks.timetravel.export import task_import

pytestmark = pytest.mark.django_db
SAMPLE = Path(__file__).parent / "runs" / "note-and-confirmation.json"


@pytest.fixture
def run(agents_defaults, user) -> Task:
    return task_import(owner=user, document=json.loads(SAMPLE.read_text()))


def question(task) -> Step:
    return Step.objects.get(task=task, kind="human_request")


def test_each_step_links_continue_from_here_for_operators(client, run, user, staff_user, other_user):
    client.force_login(user)
    page = client.get(f"/tasks/{run.pk}/").content.decode()
    # Every step but the last of this finished run: nothing comes after that one to change.
    last = run.step_count - 1
    assert page.count(f"/tasks/{run.pk}/fork?at=") == last and f"fork?at={last}" not in page
    assert "Imported run" in page and f"/api/v1/tasks/{run.pk}/export" in page
    live = client.get(f"/tasks/{run.pk}/live?after=-1").json()
    assert all((f"fork?at={step['index']}" in step["html"]) == (step["index"] < last) for step in live["steps"])
    client.force_login(staff_user)  # staff are super-users: they may fork too
    assert "fork?at=" in client.get(f"/tasks/{run.pk}/").content.decode()
    from workspaces.models import Membership

    Membership.objects.create(workspace=run.workspace, user=other_user, role="viewer")
    client.force_login(other_user)  # a viewer of the workspace sees the task but may not fork it
    assert "fork?at=" not in client.get(f"/tasks/{run.pk}/").content.decode()
    assert client.get(f"/tasks/{run.pk}/fork?at=1").status_code == 403


def test_the_fork_page_answers_the_question_differently(client, run, user, other_user):
    at = question(run).index
    client.logout()
    assert client.get(f"/tasks/{run.pk}/fork?at={at}").status_code == 302  # to the sign-in page
    client.force_login(other_user)
    assert client.get(f"/tasks/{run.pk}/fork?at={at}").status_code == 404
    client.force_login(user)
    page = client.get(f"/tasks/{run.pk}/fork?at={at}")
    assert page.status_code == 200 and 'name="answer"' in page.content.decode()
    assert client.get(f"/tasks/{run.pk}/fork?at=999").status_code == 404
    response = client.post(f"/tasks/{run.pk}/fork", {"at": at, "answer": "no, Thursday"})
    fork = Task.objects.get(forked_from=run)
    assert response.status_code == 302 and response["Location"] == f"/tasks/{fork.pk}/"
    assert (fork.forked_at_step, fork.status, fork.fork_edit["value"]) == (at, "queued", "no, Thursday")
    page = client.get(f"/tasks/{fork.pk}/").content.decode()
    assert f'href="/tasks/{run.pk}/"' in page and f"at step {at}" in page and "edited in this fork" in page
    assert f"/tasks/{fork.pk}/" in client.get(f"/tasks/{run.pk}/").content.decode()  # the parent lists it


def test_the_fork_page_records_a_corrected_model_output(client, run, user):
    client.force_login(user)
    decision = Step.objects.filter(task=run, kind="llm", output__action="finish").order_by("index").first()
    page = client.get(f"/tasks/{run.pk}/fork?at={decision.index}").content.decode()
    assert 'name="output"' in page and "finish" in page
    bad = client.post(f"/tasks/{run.pk}/fork", {"at": decision.index, "output": '{"action": "dance"}'})
    assert bad.status_code == 400 and "would be refused" in bad.content.decode()
    broken = client.post(f"/tasks/{run.pk}/fork", {"at": decision.index, "output": "{"})
    assert broken.status_code == 400 and not Task.objects.filter(forked_from=run).exists()
    fixed = json.dumps({"action": "finish", "result": "Corrected."})
    assert client.post(f"/tasks/{run.pk}/fork", {"at": decision.index, "output": fixed}).status_code == 302
    fork = Task.objects.get(forked_from=run)
    assert Step.objects.get(task=fork, index=decision.index).output == {"action": "finish", "result": "Corrected."}
