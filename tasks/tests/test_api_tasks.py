"""REST API of tasks: every endpoint as owner, other user, staff and anonymous; validation."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient

from tasks.models import Task
from tasks.tests.api_support import add_step, make_task, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()  # throttle counters live in the cache; user ids repeat between tests
    yield
    cache.clear()


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def assert_error(response, status: int, code: str | None = None, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    if field is not None:
        assert body["error"]["field"] == field
    return body["error"]


# --- create ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/tasks", "/api/v1/tasks/"])
def test_create_returns_201_with_task_and_urls(user, path):
    response = client_for(user).post(path, {"query": "  Compute 12 * 7  "}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    task = Task.objects.get(pk=body["task_id"])
    assert task.owner == user and task.query == "Compute 12 * 7" and task.trigger == "api"
    assert body["status"] == "queued"
    assert body["urls"]["self"].endswith(f"/api/v1/tasks/{task.pk}")
    assert body["urls"]["stream"].endswith(f"/api/v1/tasks/{task.pk}/stream")
    assert body["urls"]["websocket"] == f"ws://testserver/ws/tasks/{task.pk}/"
    assert response["Location"] == body["urls"]["self"]


def test_create_passes_options(user, defaults):
    response = client_for(user).post("/api/v1/tasks/", {"query": "q", "options": {"agents": ["research"],
                                                                                  "step_budget": 20}},
                                      format="json")
    assert response.status_code == 201, response.content
    assert Task.objects.get(pk=response.json()["task_id"]).options == {"agents": ["research"], "step_budget": 20}


@pytest.mark.parametrize(("options", "field"), [
    ({"agents": ["no-such-agent"]}, "options.agents"),
    ({"step_budget": 2}, "options.step_budget"),
    ({"colour": "red"}, "options.colour"),
    ("fast", "options"),
])
def test_create_rejects_bad_options(user, defaults, options, field):
    response = client_for(user).post("/api/v1/tasks/", {"query": "q", "options": options}, format="json")
    assert_error(response, 400, field=field)


@pytest.mark.parametrize(("body", "code"), [
    ({}, "required"),
    ({"query": ""}, "blank"),
    ({"query": "   \n "}, "blank"),
    ({"query": None}, "null"),
    ({"query": 42}, None),
    ({"query": "bad\x00byte"}, "null_characters_not_allowed"),
])
def test_create_rejects_missing_or_empty_query(user, body, code):
    response = client_for(user).post("/api/v1/tasks/", body, format="json")
    assert_error(response, 400, code=code, field="query")
    assert not Task.objects.exists()


@override_settings(QUERY_MAX_LENGTH=50)
def test_create_rejects_oversize_query(user):
    assert client_for(user).post("/api/v1/tasks/", {"query": "x" * 50}, format="json").status_code == 201
    error = assert_error(client_for(user).post("/api/v1/tasks/", {"query": "x" * 51}, format="json"), 400,
                         code="max_length", field="query")
    assert "50" in error["message"]


def test_malformed_json_is_400(user):
    response = client_for(user).post("/api/v1/tasks/", '{"query": "x"', content_type="application/json")
    assert_error(response, 400, code="parse_error")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_wrong_content_type_is_415(user, content_type):
    response = client_for(user).post("/api/v1/tasks/", "query=x", content_type=content_type)
    assert_error(response, 415, code="unsupported_media_type")


def test_json_array_body_is_400(user):
    response = client_for(user).post("/api/v1/tasks/", "[1, 2]", content_type="application/json")
    assert_error(response, 400)


def test_anonymous_is_401_everywhere(user):
    task = make_task(user, steps=1)
    client = APIClient()
    for method, path in [("get", "/api/v1/tasks/"), ("post", "/api/v1/tasks/"), ("get", f"/api/v1/tasks/{task.pk}"),
                         ("get", f"/api/v1/tasks/{task.pk}/steps"), ("post", f"/api/v1/tasks/{task.pk}/pause"),
                         ("post", f"/api/v1/tasks/{task.pk}/resume"), ("post", f"/api/v1/tasks/{task.pk}/cancel"),
                         ("post", f"/api/v1/tasks/{task.pk}/respond"), ("post", "/api/v1/execute")]:
        response = getattr(client, method)(path, {}, format="json") if method == "post" else client.get(path)
        assert_error(response, 401, code="not_authenticated")
    assert client.post("/api/v1/tasks/", {"query": "x"}, format="json").status_code == 401
    assert Task.objects.count() == 1


def test_bad_token_is_401(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert_error(client.get("/api/v1/tasks/"), 401, code="authentication_failed")


def test_session_auth_enforces_csrf(user):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="alice", password="alice-password")
    assert client.get("/api/v1/tasks/").status_code == 200
    assert_error(client.post("/api/v1/tasks/", {"query": "x"}, format="json"), 403, code="permission_denied")
    client.get("/api/v1/tasks/")  # no page sets the cookie here; take one from the middleware
    from django.middleware.csrf import _get_new_csrf_string

    secret = _get_new_csrf_string()
    client.cookies["csrftoken"] = secret
    response = client.post("/api/v1/tasks/", {"query": "x"}, format="json", HTTP_X_CSRFTOKEN=secret)
    assert response.status_code == 201, response.content


# --- list -----------------------------------------------------------------------------

def test_list_is_scoped_to_owner_and_staff_sees_all(user, other_user, staff_user):
    mine = [make_task(user, status="running"), make_task(user, status="completed")]
    theirs = make_task(other_user)
    body = client_for(user).get("/api/v1/tasks").json()
    assert body["count"] == 2 and {t["task_id"] for t in body["results"]} == {str(t.pk) for t in mine}
    assert client_for(other_user).get("/api/v1/tasks/").json()["results"][0]["task_id"] == str(theirs.pk)
    assert client_for(staff_user).get("/api/v1/tasks/").json()["count"] == 3


def test_list_filters_by_status_and_paginates(user):
    for _ in range(3):
        make_task(user, status="completed")
    make_task(user, status="running")
    client = client_for(user)
    body = client.get("/api/v1/tasks/?status=completed&limit=2").json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]
    assert all(t["status"] == "completed" for t in body["results"])
    assert client.get(body["next"]).json()["results"][0]["status"] == "completed"
    assert client.get("/api/v1/tasks/?status=running").json()["count"] == 1


def test_list_unknown_status_is_400_naming_the_field(user):
    error = assert_error(client_for(user).get("/api/v1/tasks/?status=sleeping"), 400, field="status")
    assert "sleeping" in error["message"]


@pytest.mark.parametrize("query", ["limit=abc", "offset=-5", "limit=-1", "limit=100000"])
def test_list_tolerates_odd_pagination(user, query):
    make_task(user)
    assert client_for(user).get(f"/api/v1/tasks/?{query}").status_code == 200


# --- detail and steps -----------------------------------------------------------------

def test_detail_owner_other_staff(user, other_user, staff_user):
    task = make_task(user, steps=2, status="completed")
    for path in (f"/api/v1/tasks/{task.pk}", f"/api/v1/tasks/{task.pk}/"):
        body = client_for(user).get(path).json()
        assert body["task_id"] == str(task.pk) and body["status"] == "completed" and body["current_step"] == 2
        assert body["result"] == "The answer."
        assert_error(client_for(other_user).get(path), 404, code="not_found")
        assert client_for(staff_user).get(path).status_code == 200


@pytest.mark.parametrize("task_id", ["not-a-uuid", "123", str(uuid.uuid4()), "%20"])
def test_unknown_or_malformed_id_is_404(user, task_id):
    client = client_for(user)
    for suffix in ("", "/steps", "/pause", "/resume", "/cancel", "/respond"):  # /stream: see test_sse.py
        path = f"/api/v1/tasks/{task_id}{suffix}"
        method = client.get if suffix in ("", "/steps") else client.post
        assert_error(method(path), 404)


def test_steps_after_and_limit(user, other_user):
    task = make_task(user, steps=5)
    client = client_for(user)
    body = client.get(f"/api/v1/tasks/{task.pk}/steps/").json()
    assert [s["index"] for s in body["steps"]] == [0, 1, 2, 3, 4] and body["has_more"] is False
    assert body["steps"][0]["prompt_version"] == "agent_research@1"
    assert [s["index"] for s in client.get(f"/api/v1/tasks/{task.pk}/steps?after=2").json()["steps"]] == [3, 4]
    page = client.get(f"/api/v1/tasks/{task.pk}/steps?after=0&limit=2").json()
    assert [s["index"] for s in page["steps"]] == [1, 2] and page["has_more"] is True
    assert_error(client.get(f"/api/v1/tasks/{task.pk}/steps?after=x"), 400, field="after")
    assert_error(client.get(f"/api/v1/tasks/{task.pk}/steps?limit=0"), 400, field="limit")
    assert_error(client_for(other_user).get(f"/api/v1/tasks/{task.pk}/steps"), 404)


# --- control --------------------------------------------------------------------------

@pytest.mark.parametrize("action", ["pause", "cancel"])
def test_control_on_finished_task_is_409(user, action):
    task = make_task(user, status="completed")
    for path in (f"/api/v1/tasks/{task.pk}/{action}", f"/api/v1/tasks/{task.pk}/{action}/"):
        assert_error(client_for(user).post(path), 409, code="conflict")


def test_resume_when_not_paused_is_409(user):
    assert_error(client_for(user).post(f"/api/v1/tasks/{make_task(user, status='running').pk}/resume"), 409)


def test_pause_resume_cancel_as_owner(user):
    task = make_task(user, status="queued")  # no worker holds a lease: each service writes its step
    client = client_for(user)
    paused = client.post(f"/api/v1/tasks/{task.pk}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert_error(client.post(f"/api/v1/tasks/{task.pk}/pause/"), 409)
    resumed = client.post(f"/api/v1/tasks/{task.pk}/resume/")
    assert resumed.status_code == 200 and resumed.json()["status"] == "queued"
    cancelled = client.post(f"/api/v1/tasks/{task.pk}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["finished_at"]
    assert list(task.steps.values_list("kind", flat=True)) == ["pause", "resume", "cancel"]


def test_control_other_user_is_404_and_changes_nothing(user, other_user):
    task = make_task(user, status="running")
    for action in ("pause", "resume", "cancel", "respond"):
        assert_error(client_for(other_user).post(f"/api/v1/tasks/{task.pk}/{action}", {"answer": "x"},
                                                 format="json"), 404)
    task.refresh_from_db()
    assert task.status == "running" and not task.pause_requested and not task.cancel_requested


def test_staff_may_cancel_anyones_task(user, staff_user):
    task = make_task(user, status="running")
    assert client_for(staff_user).post(f"/api/v1/tasks/{task.pk}/cancel").status_code == 200


def test_respond_when_not_waiting_is_409(user):
    task = make_task(user, status="running")
    assert_error(client_for(user).post(f"/api/v1/tasks/{task.pk}/respond", {"answer": "yes"}, format="json"), 409)


@pytest.mark.parametrize("body", [{}, {"answer": ""}, {"answer": "x" * 4001}, {"approve": "maybe"},
                                  {"comment": "only a comment"}, {"answer": ["a"]}])
def test_respond_validates_its_body(user, body):
    task = make_task(user, status="waiting_human", waiting_for={"reason": "question", "question": "Which?"})
    assert_error(client_for(user).post(f"/api/v1/tasks/{task.pk}/respond", body, format="json"), 400)


def test_respond_wrong_content_type_is_415(user):
    task = make_task(user, status="waiting_human", waiting_for={"reason": "question", "question": "Which?"})
    response = client_for(user).post(f"/api/v1/tasks/{task.pk}/respond", "answer=x",
                                     content_type="application/x-www-form-urlencoded")
    assert_error(response, 415)


def test_respond_answers_a_waiting_task(user):
    task = make_task(user, status="waiting_human", steps=1, waiting_for={"reason": "question", "question": "Which?"})
    response = client_for(user).post(f"/api/v1/tasks/{task.pk}/respond/", {"answer": "the first"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] != "waiting_human"


# --- tokens and throttling ------------------------------------------------------------

def test_token_endpoint(user):
    client = APIClient()
    response = client.post("/api/v1/auth/token", {"username": "alice", "password": "alice-password"}, format="json")
    assert response.status_code == 200
    key = response.json()["token"]
    assert key == token_for(user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/tasks/").status_code == 200
    wrong = APIClient().post("/api/v1/auth/token/", {"username": "alice", "password": "nope"}, format="json")
    assert_error(wrong, 400, code="invalid_credentials")
    assert_error(APIClient().post("/api/v1/auth/token", {"username": "alice"}, format="json"), 400,
                 field="password")


def test_api_token_command(user, capsys):
    from django.core.management import CommandError, call_command

    call_command("api_token", "alice")
    key = capsys.readouterr().out.strip()
    assert key == token_for(user)
    call_command("api_token", "alice", "--rotate")
    assert capsys.readouterr().out.strip() not in ("", key)
    with pytest.raises(CommandError, match="No user named"):
        call_command("api_token", "nobody")


def test_throttling_is_per_user(user, other_user, monkeypatch):
    from rest_framework.throttling import UserRateThrottle

    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {**UserRateThrottle.THROTTLE_RATES, "user": "3/min"})
    alice, bob = client_for(user), client_for(other_user)
    assert [alice.get("/api/v1/tasks/").status_code for _ in range(3)] == [200, 200, 200]
    error = assert_error(alice.get("/api/v1/tasks/"), 429, code="throttled")
    assert "available in" in error["message"]
    assert bob.get("/api/v1/tasks/").status_code == 200  # another user's budget is untouched


def test_token_endpoint_is_throttled(user, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {**ScopedRateThrottle.THROTTLE_RATES, "auth": "2/min"})
    client = APIClient()
    codes = [client.post("/api/v1/auth/token", {"username": "alice", "password": "x"}, format="json").status_code
             for _ in range(3)]
    assert codes == [400, 400, 429]


def test_add_step_helper_keeps_counts(user):
    task = make_task(user)
    add_step(task, 0)
    task.refresh_from_db()
    assert task.step_count == 1
