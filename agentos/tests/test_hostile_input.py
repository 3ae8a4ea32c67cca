"""Hostile input at the HTTP edge (issue 18): every answer a 4xx in the one error shape, never a 5xx.

Real requests through the whole middleware stack (Django's test client / DRF's APIClient),
and websocket connections through the ASGI application.
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from rest_framework.test import APIClient

from agentos.asgi import application
from tasks.tests.api_support import (
    make_task,
    stream_db_connections,  # noqa: F401 (fixture)
    token_for,
)

DEEP = "[" * 1000 + "]" * 1000


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def error_of(response, status: int, code: str | None = None, field: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    if field is not None:
        assert body["error"]["field"] == field, body
    return body["error"]


# --- JSON guards ---------------------------------------------------------------------------

JSON_ENDPOINTS = ["/api/v1/tasks/", "/api/v1/memory/", "/api/v1/execute", "/api/v1/tools/calculator/invoke"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_deeply_nested_json_is_400_invalid_json(user, path):
    response = client_for(user).post(path, DEEP, content_type="application/json")
    error_of(response, 400, code="invalid_json")


@pytest.mark.django_db
def test_nesting_just_past_the_limit_is_refused_and_named(user):
    from agentos.jsonguard import MAX_DEPTH

    nested: object = "x"
    for _ in range(MAX_DEPTH):
        nested = {"a": nested}
    body = json.dumps({"query": "hi", "options": nested})
    error_of(client_for(user).post("/api/v1/tasks/", body, content_type="application/json"), 400,
             code="invalid_json")


@pytest.mark.django_db
@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("path", ["/api/v1/memory/", "/api/v1/tasks/"])
def test_non_finite_numbers_are_400(user, path, number):
    body = '{"content": "a note", "query": "q", "metadata": {"n": NUMBER}}'.replace("NUMBER", number)
    error_of(client_for(user).post(path, body, content_type="application/json"), 400, code="invalid_number")


@pytest.mark.django_db
@pytest.mark.parametrize(("text", "code"), [("a\\u0000b", "null_characters_not_allowed"),
                                            ("a\\ud800b", "invalid_unicode")])
def test_unstorable_text_is_400_naming_the_field(user, text, code):
    from memory.models import MemoryEntry

    body = '{"content": "ok", "metadata": {"tags": ["x", "TEXT"]}}'.replace("TEXT", text)
    error_of(client_for(user).post("/api/v1/memory/", body, content_type="application/json"), 400,
             code=code, field="metadata.tags[1]")
    assert not MemoryEntry.objects.filter(owner=user).exists()


@pytest.mark.django_db
def test_malformed_json_keeps_its_parse_error_code(user):
    error_of(client_for(user).post("/api/v1/tasks/", '{"query": ', content_type="application/json"), 400,
             code="parse_error")


# --- sizes and media types -----------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("size", [1_048_577, 3_000_000, 30_000_000])
def test_oversize_bodies_are_413_in_the_error_shape_at_every_size(user, size):
    body = b'{"query": "' + b"x" * size + b'"}'
    error_of(client_for(user).post("/api/v1/tasks/", body, content_type="application/json"), 413,
             code="payload_too_large")


@pytest.mark.django_db
@override_settings(API_MAX_BODY_BYTES=2048)
def test_the_parser_enforces_the_limit_itself_behind_the_middleware(user):
    from django.test import RequestFactory

    from tasks.api.views import TaskListCreateView

    request = RequestFactory().post("/api/v1/tasks/", b'{"query": "' + b"x" * 4096 + b'"}',
                                    content_type="application/json")
    request.META["HTTP_AUTHORIZATION"] = f"Token {token_for(user)}"
    response = TaskListCreateView.as_view()(request)  # the view alone, without EdgeMiddleware
    assert response.status_code == 413, response.data
    assert response.data["error"]["code"] == "payload_too_large"


@pytest.mark.django_db
def test_oversize_webhook_body_beyond_django_limit_is_413_json(user):
    response = APIClient().post("/hooks/00000000-0000-0000-0000-000000000000", b"x" * 3_000_000,
                                content_type="application/json")
    error_of(response, 413, code="payload_too_large")


@pytest.mark.django_db
def test_oversize_page_post_is_413_not_a_400_page(user):
    response = APIClient().post("/tasks/new", b"x" * 3_000_000, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=", "text/plain",
                                          "application/xml", "application/x-www-form-urlencoded"])
def test_unsupported_media_is_415_in_the_error_shape(user, content_type):
    response = client_for(user).post("/api/v1/tasks/", b"query=x", content_type=content_type)
    error_of(response, 415, code="unsupported_media_type")


@pytest.mark.django_db
def test_content_length_that_is_not_a_number_is_400(user):
    response = client_for(user).generic("POST", "/api/v1/tasks/", b"{}", content_type="application/json",
                                        CONTENT_LENGTH="abc")
    error_of(response, 400, code="invalid_content_length")


# --- unknown API paths ------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v1/tasks/{id}/unknown", "/api/v2/", "/api/"])
def test_unknown_api_paths_are_json_404(user, path):
    task = make_task(user)
    for client in (client_for(user), APIClient()):
        error_of(client.get(path.format(id=task.pk)), 404, code="not_found")


@pytest.mark.django_db
def test_unknown_page_paths_stay_html(user):
    response = APIClient().get("/nope/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


# --- websocket ---------------------------------------------------------------------------------

def ws_connect_and_close_code(path: str, messages: list[str] = ()) -> tuple[bool, int | None, list]:
    """Connect, send ``messages``; returns (accepted, close code or None, messages received)."""

    async def scenario():
        ws = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://testserver")])
        connected, code = await ws.connect(timeout=5)
        received, close = [], None
        if not connected:
            return connected, code, received
        for message in messages:
            await ws.send_to(text_data=message)
        while True:
            if await ws.receive_nothing(timeout=2):
                await ws.disconnect()  # still open
                break
            output = await ws.receive_output(timeout=1)
            if output["type"] == "websocket.close":
                close = output.get("code")
                break
            received.append(json.loads(output["text"]))
        return connected, close, received

    return async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/ws/tasks/", "/ws/x/", "/ws/", "/nope", "/ws/tasks/1/2/"])
def test_websocket_unknown_paths_close_4404_without_an_error_log(path, caplog):
    accepted, code, _ = ws_connect_and_close_code(path)
    assert (accepted, code) == (True, 4404)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("stream_db_connections")
@pytest.mark.parametrize(("message", "why"), [
    (DEEP, "deep"),
    ('{"action": "respond", "answer": "' + "x" * 20_000 + '"}', "oversize"),
    ('{"action": {"a": {"b": {"c": {"d": 1}}}}}', "past the depth limit"),
])
def test_websocket_hostile_control_messages_close_4400(user, message, why):
    task = make_task(user, status="queued")
    accepted, code, received = ws_connect_and_close_code(f"/ws/tasks/{task.pk}/?token={token_for(user)}",
                                                         [message])
    assert accepted and code == 4400, (why, code, received)
    assert received and received[0]["type"] == "snapshot"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("stream_db_connections")
@pytest.mark.parametrize(("message", "code", "field"), [
    ('{"action": "respond", "answer": "a\\u0000b"}', "null_characters_not_allowed", "answer"),
    ('{"action": "respond", "answer": 1e400}', "invalid_number", None),
])
def test_websocket_unstorable_control_message_is_an_error_reply(user, message, code, field):
    task = make_task(user, status="queued")
    accepted, close, received = ws_connect_and_close_code(f"/ws/tasks/{task.pk}/?token={token_for(user)}",
                                                          [message])
    assert accepted and close is None
    errors = [item for item in received if item["type"] == "error"]
    assert errors and errors[0]["error"]["code"] == code and errors[0]["error"]["field"] == field


# --- text outside bodies: credentials, filters, URL parts ----------------------------------

def personal_workspace(user):
    from workspaces.access import default_workspace

    return default_workspace(user)  # the user is its admin


def page_client(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("stream_db_connections")
@pytest.mark.parametrize("token", ["%00", "a%00b", "0" * 39 + "%00", "UPPER"])
def test_a_token_of_no_issued_form_is_no_ones_on_the_stream_and_websocket(user, token):
    task = make_task(user, status="completed")
    if token == "UPPER":  # the user's real key, in capitals: not a key this service issues
        token = token_for(user).upper()
    error_of(APIClient().get(f"/api/v1/tasks/{task.pk}/stream?token={token}"), 401, code="not_authenticated")
    accepted, code, _ = ws_connect_and_close_code(f"/ws/tasks/{task.pk}/?token={token}")
    assert (accepted, code) == (True, 4401)


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "field", "code"), [
    ("since=2024-13-01T00:00", "since", None),  # well formed, yet no such month
    ("until=2024-02-30T00:00", "until", None),
    ("since=2024-01-01T00:00%2B99:00", "since", None),  # an offset over a day
    ("until=9999-12-31T23:59:59-23:59", "until", None),  # the year 10000 in UTC
    ("since=0001-01-01T00:00:00%2B23:59", "since", None),  # the year 0 in UTC
    ("actor=%00", "actor", "null_characters_not_allowed"),
    ("action=%00", "action", "null_characters_not_allowed"),
    ("action=task%00.", "action", "null_characters_not_allowed"),  # a prefix
    ("target_type=membership%00", "target_type", "null_characters_not_allowed"),
    ("target_id=%00", "target_id", "null_characters_not_allowed"),
])
def test_audit_filters_refuse_impossible_values_naming_the_field(user, query, field, code):
    workspace = personal_workspace(user)
    error_of(client_for(user).get(f"/api/v1/workspaces/{workspace.pk}/audit?{query}"), 400, code=code,
             field=field)
    page = page_client(user).get(f"/workspaces/{workspace.pk}/audit?{query}")
    assert page.status_code == 400
    assert page.context["error"].startswith(field) and 'role="alert"' in page.content.decode()


@pytest.mark.django_db
def test_audit_filters_take_any_real_moment_whatever_its_offset(user):
    workspace = personal_workspace(user)
    client_for(user).post(f"/api/v1/workspaces/{workspace.pk}/tokens", {"name": "ci", "role": "viewer"},
                          format="json")

    def actions(query: str) -> list[str]:
        response = client_for(user).get(f"/api/v1/workspaces/{workspace.pk}/audit?{query}")
        assert response.status_code == 200, response.content
        return [event["action"] for event in response.json()["events"]]

    # PostgreSQL refuses offsets beyond 15 hours; Python, and so ISO 8601 parsing, takes up to 23:59.
    assert "token.create" in actions("since=2000-01-01T00:00:00%2B23:00")
    assert actions("until=2000-01-01T00:00:00-23:00") == []
    assert "token.create" in actions("since=2000-01-01T00:00")  # naive: the server's time zone


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["%00", "alice%00"])
def test_removing_a_member_named_with_a_nul_is_404(user, username):
    from workspaces.models import Membership

    workspace = personal_workspace(user)
    response = client_for(user).delete(f"/api/v1/workspaces/{workspace.pk}/members/{username}")
    error_of(response, 404, code="not_found", field="username")
    assert Membership.objects.filter(workspace=workspace, user=user).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("form", ["webhooks", "schedules"])
@pytest.mark.parametrize(("options", "field", "message"), [
    ("[" * 2000, "options", "nested deeper"),
    ('{"a": NaN}', "options", "NaN"),
    ('{"a": "x\\u0000"}', "options.a", "Null characters"),
])
def test_workspace_page_forms_refuse_hostile_options_as_a_form_error(user, form, options, field, message):
    from triggers.models import ScheduledQuery, Webhook

    workspace = personal_workspace(user)
    response = page_client(user).post(f"/workspaces/{workspace.pk}/{form}", {
        "name": "x", "query": "q", "interval_minutes": "5", "options": options})
    assert response.status_code == 400
    assert response.context["form_error"]["field"] == field
    assert message in response.context["form_error"]["message"]
    assert 'role="alert"' in response.content.decode()
    assert not Webhook.objects.exists() and not ScheduledQuery.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["action=%00", "target_type__exact=x%00", "q=x&%00=1"])
def test_admin_change_list_filters_with_a_nul_are_400(staff_user, query):
    client = page_client(staff_user)
    assert client.get(f"/admin/workspaces/auditevent/?{query}").status_code == 400
    assert client.get("/admin/tasks/task/?status=%00").status_code == 400
    assert client.get("/admin/auth/user/?username=%00").status_code == 400
    assert client.get("/admin/workspaces/auditevent/?action=task.pause").status_code == 200


# --- strict input ----------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize(("options", "field"), [
    ({"step_budget": "10"}, "options.step_budget"),
    ({"step_budget": 10.0}, "options.step_budget"),
    ({"step_budget": True}, "options.step_budget"),
    ({"max_subtasks": "2"}, "options.max_subtasks"),
    ({"allow_human": "yes"}, "options.allow_human"),
    ({"allow_human": 1}, "options.allow_human"),
    ({"agents": ["research"] * 10_000}, "options.agents"),
    ({"require_approval": ["x"] * 1000}, "options.require_approval"),
    ({"require_approval": [5]}, "options.require_approval.0"),
    ({"nope": 1}, "options.nope"),
])
def test_task_options_are_strict_and_bounded(defaults, user, options, field):
    from tasks.models import Task

    response = client_for(user).post("/api/v1/tasks/", {"query": "q", "options": options}, format="json")
    error_of(response, 400, field=field)
    assert not Task.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("options", "field"), [
    ({"step_budget": "10"}, "options.step_budget"),
    ({"allow_human": "yes"}, "options.allow_human"),
    ({"agents": ["research"] * 10_000}, "options.agents"),
    ([1, 2], "options"),
])
def test_the_service_applies_the_same_option_rules(defaults, user, options, field):
    """Pages, webhooks, schedules and the CLI call task_create directly."""
    from agentos.api import ApplicationError
    from tasks.services import task_create

    with pytest.raises(ApplicationError) as caught:
        task_create(owner=user, query="q", options=options)
    assert caught.value.field == field


@pytest.mark.django_db
def test_valid_options_still_create_a_task(defaults, user):
    body = {"query": "q", "options": {"step_budget": 10, "allow_human": False, "agents": ["research"],
                                      "max_subtasks": 2, "require_approval": ["http_get"]}}
    response = client_for(user).post("/api/v1/tasks/", body, format="json")
    assert response.status_code == 201, response.content
    from tasks.models import Task

    assert Task.objects.get().step_budget == 10


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field"), [
    ({"query": "q", "timeout": "10"}, "timeout"),
    ({"query": "q", "wait": "no"}, "wait"),
    ({"query": 5}, "query"),
])
def test_execute_input_is_strict(user, body, field):
    error_of(client_for(user).post("/api/v1/execute", body, format="json"), 400, field=field)


@pytest.mark.django_db
@pytest.mark.parametrize("content", [5, True, ["a"], {"a": 1}])
def test_memory_content_must_be_text(user, content):
    error_of(client_for(user).post("/api/v1/memory/", {"content": content}, format="json"), 400, field="content")


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field", "code"), [
    ({"approve": True}, "approve", "not_an_approval"),
    ({"approve": "yes"}, "approve", None),
    ({"answer": 5}, "answer", None),
])
def test_answers_must_fit_the_question(user, body, field, code):
    from tasks.models import Task
    from tasks.tests.api_support import add_step

    task = make_task(user, status="waiting_human", steps=1)
    add_step(task, 1, kind="human_request")
    Task.objects.filter(pk=task.pk).update(waiting_for={
        "step": 1, "reason": "ask_human", "question": "Which?", "choices": [], "subtask": "s1", "agent": "research",
        "tool_call": None})
    error_of(client_for(user).post(f"/api/v1/tasks/{task.pk}/respond", body, format="json"), 400, field=field,
             code=code)
    task.refresh_from_db()
    assert task.status == "waiting_human"


@pytest.mark.django_db
def test_an_approval_still_takes_approve(user):
    from tasks.models import Task
    from tasks.tests.api_support import add_step

    task = make_task(user, status="waiting_human", steps=1)
    add_step(task, 1, kind="human_request")
    Task.objects.filter(pk=task.pk).update(waiting_for={
        "step": 1, "reason": "approval", "question": "Run it?", "choices": [], "subtask": "s1", "agent": "research",
        "tool_call": {"tool": "http_get", "arguments": {}}})
    error_of(client_for(user).post(f"/api/v1/tasks/{task.pk}/respond", {"answer": "perhaps"}, format="json"), 400,
             field="approve")
    response = client_for(user).post(f"/api/v1/tasks/{task.pk}/respond", {"approve": True}, format="json")
    assert response.status_code == 200, response.content


# --- per-task callback URLs ----------------------------------------------------------------

PUBLIC_IP = "93.184.215.14"


@pytest.mark.django_db
@override_settings(CALLBACK_ALLOWED_HOSTS=[PUBLIC_IP])
def test_a_callback_url_is_accepted_and_stored(user):
    from tasks.models import Task

    url = f"https://{PUBLIC_IP}/hook"
    response = client_for(user).post("/api/v1/tasks/", {"query": "q", "callback_url": url}, format="json")
    assert response.status_code == 201, response.content
    assert Task.objects.get().callback_url == url


@pytest.mark.django_db
@override_settings(CALLBACK_ALLOWED_HOSTS=["*"])
@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/x", "http://localhost/x", "http://10.0.0.5/x",
                                 "http://192.168.1.1/x", "http://169.254.169.254/latest/meta-data/",
                                 "http://[::1]/x", "http://0.0.0.0/x", "ftp://93.184.215.14/x", "not a url", 5])
def test_internal_callback_urls_are_refused_at_save(user, url):
    from tasks.models import Task

    response = client_for(user).post("/api/v1/tasks/", {"query": "q", "callback_url": url}, format="json")
    error_of(response, 400, field="callback_url")
    assert not Task.objects.exists()


@pytest.mark.django_db
def test_a_callback_host_off_the_allowlist_is_refused(user):
    response = client_for(user).post("/api/v1/tasks/", {"query": "q", "callback_url": f"https://{PUBLIC_IP}/x"},
                                     format="json")
    assert "CALLBACK_ALLOWED_HOSTS" in error_of(response, 400, field="callback_url")["message"]


@pytest.mark.django_db
@override_settings(CALLBACK_ALLOWED_HOSTS=["*"], HTTP_ALLOW_PRIVATE_ADDRESSES=True)
def test_private_callbacks_pass_when_the_operator_allows_them(user):
    response = client_for(user).post("/api/v1/tasks/", {"query": "q", "callback_url": "http://10.0.0.5/x"},
                                     format="json")
    assert response.status_code == 201, response.content


@pytest.mark.django_db
@override_settings(CALLBACK_ALLOWED_HOSTS=["*"])
def test_the_admin_refuses_an_internal_callback_url(staff_user, client):
    from triggers.models import Webhook

    client.force_login(staff_user)
    form = {"name": "hook", "owner": staff_user.pk, "enabled": "on", "query_template": "",
            "options": "{}", "callback_url": "http://169.254.169.254/latest", "_save": "Save"}
    response = client.post("/admin/triggers/webhook/add/", form)
    assert response.status_code == 200 and b"not allowed" in response.content
    assert not Webhook.objects.exists()
    form["callback_url"] = f"https://{PUBLIC_IP}/hook"
    assert client.post("/admin/triggers/webhook/add/", form).status_code == 302
    assert Webhook.objects.get().callback_url == f"https://{PUBLIC_IP}/hook"


# --- tokens in logs --------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "expected"), [
    ('"GET /api/v1/tasks/1/stream?token=abc123 HTTP/1.1" 200',
     '"GET /api/v1/tasks/1/stream?token=[redacted] HTTP/1.1" 200'),
    ("/ws/tasks/1/?after=3&token=abc&x=1", "/ws/tasks/1/?after=3&token=[redacted]&x=1"),
    ("/x?access_token=a&api_key=b&KEY=c&secret=d",
     "/x?access_token=[redacted]&api_key=[redacted]&KEY=[redacted]&secret=[redacted]"),
    ("/api/v1/tasks/?status=running", "/api/v1/tasks/?status=running"),
])
def test_redaction_of_query_string_credentials(line, expected):
    from agentos.logfilters import redact

    assert redact(line) == expected


def test_daphne_access_log_lines_are_redacted():
    import datetime
    import io

    from daphne.access import AccessLogGenerator

    from agentos.logfilters import install_access_log_redaction

    install_access_log_redaction()
    stream = io.StringIO()
    AccessLogGenerator(stream)("http", "complete", {"path": "/api/v1/tasks/1/stream?token=s3cr3t", "status": 200,
                                                    "method": "GET", "client": "127.0.0.1:5000", "size": 10})
    AccessLogGenerator(stream).write_entry("127.0.0.1", datetime.datetime.now(), "GET /x?token=s3cr3t", 200, 1)
    assert "s3cr3t" not in stream.getvalue() and stream.getvalue().count("token=[redacted]") == 2


def test_the_console_handler_carries_the_redaction_filter():
    import logging.config

    from django.conf import settings

    assert "redact_tokens" in settings.LOGGING["handlers"]["console"]["filters"]
    logging.config.dictConfig(settings.LOGGING)
    console = next(h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler))
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "GET %s", ("/a?token=s3cr3t",), None)
    for log_filter in console.filters:
        log_filter.filter(record)
    assert record.getMessage() == "GET /a?token=[redacted]"
