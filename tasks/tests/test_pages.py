"""The pages: access rules, the dashboard, the task page and its controls."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tasks.models import Step, Task

pytestmark = pytest.mark.django_db


def make_task(owner, *, status="running", query="What is 6 * 7?", **fields) -> Task:
    if status in ("completed", "failed", "cancelled"):
        fields.setdefault("finished_at", timezone.now())
    return Task.objects.create(owner=owner, query=query, status=status, **fields)


def add_step(task: Task, kind: str, *, subtask="", agent="", **fields) -> Step:
    index = Step.objects.filter(task=task).count()
    step = Step.objects.create(task=task, index=index, kind=kind, subtask_id=subtask, agent=agent, **fields)
    Task.objects.filter(pk=task.pk).update(step_count=index + 1)
    task.refresh_from_db()
    return step


def full_run(task: Task) -> None:
    """A finished run with one step of every interesting kind."""
    add_step(task, "plan", output={"subtasks": [
        {"id": "s1", "description": "Find the facts", "agent": "research"},
        {"id": "s2", "description": "Compute it", "agent": "analysis"}]},
        prompt_label="plan@1", tokens_in=120, tokens_out=30, duration_ms=12)
    add_step(task, "llm", subtask="s1", agent="research", prompt_label="agent_research@1", tokens_in=200,
             tokens_out=20, output={"action": "tool", "tool": "web_search", "arguments": {"query": "facts"},
                                    "reason": "need sources"})
    add_step(task, "tool", subtask="s1", agent="research",
             input={"tool": "web_search", "arguments": {"query": "facts"}},
             output={"result": [{"title": "A fact"}]}, duration_ms=7)
    add_step(task, "human_request", subtask="s1", agent="research",
             input={"reason": "ask_human", "question": "Is this right?", "choices": ["yes", "no"]})
    add_step(task, "human_response", subtask="s1", agent="research", input={"answer": "yes"})
    add_step(task, "tool", subtask="s2", agent="analysis", status="error",
             input={"tool": "calculator", "arguments": {"expression": "6 *"}}, error="calculator: bad expression")
    add_step(task, "summary", subtask="s2", agent="analysis", output={"summary": "Folded."}, prompt_label="summarize@1")
    add_step(task, "synthesis", output={"result": "# Answer\n\n**42**"}, prompt_label="synthesize@1")
    add_step(task, "result", output={"result": "# Answer\n\n**42**"})


@pytest.fixture
def client_for():
    def login(user) -> Client:
        client = Client()
        client.force_login(user)
        return client
    return login


PAGES = ["dashboard", "page-prompts", "page-tools"]


@pytest.mark.parametrize("name", PAGES)
def test_pages_need_a_signed_in_user(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_task_page_and_fragments_need_a_signed_in_user(client, user):
    task = make_task(user)
    for name in ("page-task", "page-task-live", "page-task-row"):
        response = client.get(reverse(name, args=[task.id]))
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("login"))


def test_login_and_logout(client, user):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="password"' in page.content
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-password"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password_shows_an_error(client, user):
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"didn" in response.content and b'role="alert"' in response.content


def test_dashboard_lists_own_tasks_newest_first(client_for, user, other_user):
    first = make_task(user, query="first task")
    second = make_task(user, query="second task", status="completed", progress=1.0)
    make_task(other_user, query="bob's secret task")
    html = client_for(user).get("/").content.decode()
    assert "bob&#x27;s secret task" not in html and "secret task" not in html
    assert html.index("second task") < html.index("first task")
    assert f'id="task-{second.id}"' in html and f'id="task-{first.id}"' in html
    assert 'class="badge status-completed"' in html
    assert re.search(r'<progress max="100" value="100"', html)


def test_staff_see_every_task(client_for, staff_user, user):
    make_task(user, query="alice's task")
    assert "alice&#x27;s task" in client_for(staff_user).get("/").content.decode()


def test_dashboard_filters_by_status(client_for, user):
    make_task(user, query="a running one")
    make_task(user, query="a finished one", status="completed")
    client = client_for(user)
    html = client.get("/?status=completed").content.decode()
    assert "a finished one" in html and "a running one" not in html
    # An unknown status is ignored rather than an error.
    html = client.get("/?status=bogus").content.decode()
    assert "a finished one" in html and "a running one" in html


def test_new_task_form_creates_a_page_task(client_for, user, defaults):
    response = client_for(user).post(reverse("page-task-new"), {"query": "Compute 6 * 7", "agent": "analysis",
                                                                 "step_budget": "20"})
    task = Task.objects.get(owner=user)
    assert response.status_code == 302 and response["Location"] == reverse("page-task", args=[task.id])
    assert task.trigger == "page" and task.query == "Compute 6 * 7"
    assert task.options == {"agents": ["analysis"], "step_budget": 20}
    assert task.step_budget == 20


@pytest.mark.parametrize("data", [{"query": "   "}, {"query": "x", "step_budget": "2"},
                                  {"query": "x", "agent": "no-such-agent"}])
def test_new_task_form_rejects_bad_input(client_for, user, defaults, data):
    response = client_for(user).post(reverse("page-task-new"), data)
    assert response.status_code == 400
    assert b'role="alert"' in response.content
    assert not Task.objects.exists()


def test_task_page_shows_every_kind_of_step(client_for, user):
    task = make_task(user, status="completed", result="# Answer\n\n**42**", progress=1.0)
    full_run(task)
    response = client_for(user).get(reverse("page-task", args=[task.id]))
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('class="step kind-') == 9
    assert 'data-group="s1|research"' in html and 'data-group="s2|analysis"' in html
    assert "Find the facts" in html  # the subtask's description heads its group
    assert "need sources" in html and "&quot;web_search&quot;" in html
    assert "Is this right?" in html and "calculator: bad expression" in html
    assert "<strong>42</strong>" in html  # the Markdown result is rendered
    assert "Show prompt" in html and "agent_research@1" in html
    # Buttons follow the status: a completed task can be neither paused, resumed nor cancelled.
    for button in ("pause-button", "resume-button", "cancel-button"):
        assert re.search(rf'id="{button}" disabled', html), button


def test_groups_follow_the_order_of_the_steps(client_for, user):
    task = make_task(user)
    full_run(task)
    html = client_for(user).get(reverse("page-task", args=[task.id])).content.decode()
    groups = re.findall(r'<section class="group[^"]*" data-group="([^"]*)"', html)
    assert groups == ["", "s1|research", "s2|analysis", ""]


def test_model_output_is_never_raw_html(client_for, user):
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    task = make_task(user, status="completed", result=f"Done {evil}\n\n[link](javascript:alert(1))", query=evil)
    add_step(task, "llm", subtask="s1", agent="research", prompt_label="agent_research@1",
             output={"action": "finish", "result": evil, "reason": evil})
    add_step(task, "synthesis", output={"result": evil})
    html = client_for(user).get(reverse("page-task", args=[task.id])).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html and "href=\"javascript:" not in html
    assert "&lt;script&gt;alert" in html


def test_another_users_task_is_404_everywhere(client_for, user, other_user):
    task = make_task(user)
    client = client_for(other_user)
    for name in ("page-task", "page-task-live", "page-task-row"):
        assert client.get(reverse(name, args=[task.id])).status_code == 404, name
    for action in ("pause", "resume", "cancel"):
        assert client.post(reverse("page-task-control", args=[task.id, action])).status_code == 404
    assert client.post(reverse("page-task-respond", args=[task.id]), {"answer": "x"}).status_code == 404
    task.refresh_from_db()
    assert task.status == "running" and not task.pause_requested


def test_staff_can_open_any_task(client_for, user, staff_user):
    task = make_task(user)
    assert client_for(staff_user).get(reverse("page-task", args=[task.id])).status_code == 200


def test_pause_resume_and_cancel_call_the_services(client_for, user):
    task = make_task(user, status="queued")
    client = client_for(user)
    url = reverse("page-task", args=[task.id])
    response = client.post(reverse("page-task-control", args=[task.id, "pause"]))
    assert response.status_code == 302 and response["Location"] == url
    task.refresh_from_db()
    assert task.status == "paused"
    html = client.get(url).content.decode()
    assert re.search(r'id="pause-button" disabled', html) and not re.search(r'id="resume-button" disabled', html)
    client.post(reverse("page-task-control", args=[task.id, "resume"]))
    task.refresh_from_db()
    assert task.status == "queued"
    client.post(reverse("page-task-control", args=[task.id, "cancel"]))
    task.refresh_from_db()
    assert task.status == "cancelled"
    assert list(task.steps.values_list("kind", flat=True)) == ["pause", "resume", "cancel"]


def test_a_control_the_state_refuses_shows_a_message(client_for, user):
    task = make_task(user, status="completed")
    client = client_for(user)
    response = client.post(reverse("page-task-control", args=[task.id, "resume"]), follow=True)
    assert response.status_code == 200
    assert b"cannot be resumed" in response.content
    assert client.post(reverse("page-task-control", args=[task.id, "explode"])).status_code == 404
    assert client.get(reverse("page-task-control", args=[task.id, "pause"])).status_code == 405


def waiting_task(user, **waiting) -> Task:
    task = make_task(user, status="waiting_human")
    request = add_step(task, "human_request", subtask="s1", agent="research",
                       input={"reason": waiting.get("reason", "ask_human"), "question": "Go ahead?",
                              "choices": ["yes", "no"], "tool_call": waiting.get("tool_call")})
    task.waiting_for = {"step": request.index, "reason": waiting.get("reason", "ask_human"), "question": "Go ahead?",
                        "choices": ["yes", "no"], "tool_call": waiting.get("tool_call"), "subtask": "s1",
                        "agent": "research"}
    task.save()
    return task


def test_answer_form_appears_and_answers(client_for, user):
    task = waiting_task(user)
    client = client_for(user)
    html = client.get(reverse("page-task", args=[task.id])).content.decode()
    assert 'id="respond-form"' in html and "Go ahead?" in html
    assert html.index('id="respond-form"') < html.index('id="task-status"')  # at the top
    response = client.post(reverse("page-task-respond", args=[task.id]), {"answer": "yes, go"})
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.status == "queued"
    assert task.steps.last().kind == "human_response" and task.steps.last().input["answer"] == "yes, go"


def test_a_suggested_answer_button_answers(client_for, user):
    task = waiting_task(user)
    # The browser sends the clicked button and the (empty) textarea together.
    client_for(user).post(reverse("page-task-respond", args=[task.id]), {"choice": "no", "answer": ""})
    task.refresh_from_db()
    assert task.status == "queued" and task.steps.last().input["answer"] == "no"


def test_empty_answer_is_refused_without_a_change(client_for, user):
    task = waiting_task(user)
    response = client_for(user).post(reverse("page-task-respond", args=[task.id]), {"answer": ""}, follow=True)
    assert b"Write an answer first." in response.content
    task.refresh_from_db()
    assert task.status == "waiting_human"


def test_approval_form_approves_or_denies_with_a_comment(client_for, user):
    call = {"tool": "http_get", "arguments": {"url": "https://example.com"}}
    task = waiting_task(user, reason="approval", tool_call=call)
    client = client_for(user)
    html = client.get(reverse("page-task", args=[task.id])).content.decode()
    assert 'value="approve"' in html and 'value="deny"' in html and "example.com" in html
    client.post(reverse("page-task-respond", args=[task.id]), {"decision": "deny", "comment": "not that site"})
    step = task.steps.last()
    assert step.kind == "human_response"
    assert step.input["approve"] is False and step.input["comment"] == "not that site"


def test_answering_a_task_that_is_not_waiting_shows_the_conflict(client_for, user):
    task = make_task(user, status="running")
    response = client_for(user).post(reverse("page-task-respond", args=[task.id]), {"answer": "hi"}, follow=True)
    assert b"not waiting for an answer" in response.content


def test_offline_banner(client_for, user, settings):
    settings.LLM_PROVIDER = "offline"
    assert b"Offline mode" in client_for(user).get("/").content
    settings.LLM_PROVIDER = "openai"
    assert b"Offline mode" not in client_for(user).get("/").content


def test_a_failed_task_shows_the_provider_error_and_a_retry_button(client_for, user, other_user,
                                                                    django_capture_on_commit_callbacks):
    task = make_task(user, status="failed", error="server_error: HTTP 503 (unavailable for 31 s)",
                     provider_error={"kind": "transient", "code": "server_error", "message": "m", "step": 0})
    add_step(task, "error", status="error", error=task.error, input={"reason": "provider_unavailable"})
    client = client_for(user)
    url = reverse("page-task", args=[task.id])
    html = client.get(url).content.decode()
    assert 'id="retry-button"' in html and "The model provider was unavailable" in html
    assert client_for(other_user).post(reverse("page-task-control", args=[task.id, "retry"])).status_code == 404
    with django_capture_on_commit_callbacks():  # (the job it sends is not run here)
        response = client.post(reverse("page-task-control", args=[task.id, "retry"]), follow=True)
    assert b"Retrying from the last good step." in response.content
    task.refresh_from_db()
    assert task.status == "queued" and task.steps.last().kind == "retry"
    assert 'id="retry-button"' not in client.get(url).content.decode()


def test_waiting_and_operator_notices(client_for, user):
    client = client_for(user)
    waiting = make_task(user, status="waiting_provider", provider_error={
        "kind": "transient", "code": "rate_limited", "next_try_at": "2026-12-03T13:45:02Z", "step": 1,
        "message": "waiting for the model provider (rate_limited), next try at 2026-12-03T13:45:02Z"})
    add_step(waiting, "provider_wait", status="error", error="rate_limited: HTTP 429",
             input={"next_try_at": "2026-12-03T13:45:02Z", "attempt": 1})
    html = client.get(reverse("page-task", args=[waiting.id])).content.decode()
    assert "Waiting for the model provider" in html and "next try at 2026-12-03T13:45:02Z" in html
    assert "(try 1)" in html and not re.search(r'id="pause-button" disabled', html)
    paused = make_task(user, status="paused", provider_error={
        "kind": "configuration", "code": "auth_error", "step": 1, "message": "the key was refused"})
    html = client.get(reverse("page-task", args=[paused.id])).content.decode()
    assert "An operator must fix the provider settings" in html and "auth_error" in html
