"""The OpenAPI schema describes the real responses: every operation is called and each
response (successes and errors) is validated against the generated schema with openapi-core.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from openapi_core import OpenAPI
from openapi_core.contrib.django import DjangoOpenAPIRequest, DjangoOpenAPIResponse
from rest_framework.test import APIClient

from tasks.tests.api_support import make_task, stream_db_connections, token_for  # noqa: F401 (fixture)

# The SSE and execute views read from pool threads, so rows must be committed.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stream_db_connections")]


class Request(DjangoOpenAPIRequest):
    """Paths answer with or without the trailing slash; the schema lists them with it."""

    @property
    def path(self) -> str:
        path = self.request.path
        return path if path.endswith("/") else path + "/"

    @property
    def path_pattern(self) -> None:
        return None  # match the path against the schema's templates


@pytest.fixture(scope="module")
def schema_document(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        from django.contrib.auth import get_user_model

        reader, _ = get_user_model().objects.get_or_create(username="schema-reader")
        client = APIClient()
        client.force_authenticate(reader)
        response = client.get("/api/schema/", {"format": "json"})
        reader.delete()
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def check(schema_document):
    """Validate a response against the schema and record which operation it exercised."""
    openapi = OpenAPI.from_dict(schema_document)  # also validates the document itself
    seen: set[tuple[str, str]] = set()

    def validate(response, status: int):
        assert response.status_code == status, response.content
        request = Request(response.wsgi_request)
        try:
            openapi.validate_response(request, DjangoOpenAPIResponse(response))
        except Exception as exc:  # one readable line per problem instead of the whole body
            problems = [error.message[:200] for error in getattr(exc.__cause__, "schema_errors", ())]
            raise AssertionError(f"{request.method.upper()} {request.path} {response.status_code}: "
                                 f"{type(exc).__name__} {problems or str(exc)[:300]}") from None
        seen.add((_template(schema_document, request.path), request.method))
        return response

    validate.seen = seen
    cache.clear()
    return validate


def _template(document: dict, path: str) -> str:
    """The schema path template a concrete path falls under (a literal segment before a
    parameter: /tasks/import/ is not /tasks/{task_id}/)."""
    parts = path.split("/")
    for template in sorted(document["paths"], key=lambda template: template.count("{")):
        pattern = template.split("/")
        if len(pattern) == len(parts) and all(p == q or (p.startswith("{") and q)
                                              for p, q in zip(pattern, parts, strict=True)):
            return template
    raise AssertionError(f"{path} is in no schema path")


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def test_every_tasks_operation_matches_the_schema(schema_document, check, user, other_user):
    client, anonymous = client_for(user), APIClient()
    running = make_task(user, status="running", steps=3)
    done = make_task(user, status="completed", steps=2, intermediate_results=[
        {"subtask": "s1", "agent": "research", "status": "completed", "result": "found"}])
    waiting = make_task(user, status="waiting_human", steps=1,
                        waiting_for={"reason": "question", "question": "Which one?", "step": 0})
    queued = make_task(user, status="queued")
    failed = make_task(user, status="failed", steps=2, step_count=2, error="rate_limited: HTTP 429",
                       provider_error={"kind": "transient", "code": "rate_limited", "message": "m", "step": 1,
                                       "retry_after": 2.0, "status": 429})

    check(client.get("/api/v1/tasks/"), 200)
    check(client.get("/api/v1/tasks/?status=completed&limit=1"), 200)
    check(client.get("/api/v1/tasks/?status=nope"), 400)
    check(anonymous.get("/api/v1/tasks/"), 401)
    check(client.post("/api/v1/tasks/", {"query": "Compute 2 + 2", "options": {"step_budget": 10}},
                      format="json"), 201)
    check(client.post("/api/v1/tasks", {"query": ""}, format="json"), 400)
    check(client.post("/api/v1/tasks/", "query=x", content_type="text/plain"), 415)
    for task in (running, done, waiting):
        check(client.get(f"/api/v1/tasks/{task.pk}"), 200)
    check(client_for(other_user).get(f"/api/v1/tasks/{done.pk}/"), 404)
    check(client.get(f"/api/v1/tasks/{running.pk}/steps/?after=0"), 200)
    check(client.get(f"/api/v1/tasks/{done.pk}/steps"), 200)
    check(client.get(f"/api/v1/tasks/{done.pk}/steps?after=x"), 400)
    check(client.post(f"/api/v1/tasks/{done.pk}/pause"), 409)
    check(client.post(f"/api/v1/tasks/{queued.pk}/pause"), 200)
    check(client.post(f"/api/v1/tasks/{queued.pk}/resume"), 200)
    check(client.post(f"/api/v1/tasks/{done.pk}/resume"), 409)
    check(client.post(f"/api/v1/tasks/{done.pk}/cancel"), 409)
    check(client.post(f"/api/v1/tasks/{queued.pk}/cancel/"), 200)
    check(client.post(f"/api/v1/tasks/{running.pk}/respond", {"answer": "x"}, format="json"), 409)
    check(client.post(f"/api/v1/tasks/{done.pk}/retry"), 409)
    check(client_for(other_user).post(f"/api/v1/tasks/{failed.pk}/retry"), 404)
    check(client.post(f"/api/v1/tasks/{failed.pk}/retry/"), 200)
    check(client.post(f"/api/v1/tasks/{waiting.pk}/respond", {}, format="json"), 400)
    check(client.post(f"/api/v1/tasks/{waiting.pk}/respond", "x", content_type="text/plain"), 415)
    check(client.post(f"/api/v1/tasks/{waiting.pk}/respond", {"answer": "The first"}, format="json"), 200)
    check(client.get(f"/api/v1/tasks/{running.pk}/stream?after=x"), 400)
    check(client_for(other_user).get(f"/api/v1/tasks/{running.pk}/stream"), 404)
    check(anonymous.get(f"/api/v1/tasks/{running.pk}/stream"), 401)
    check(client.post(f"/api/v1/tasks/{running.pk}/stream-token"), 200)
    check(client_for(other_user).post(f"/api/v1/tasks/{running.pk}/stream-token"), 404)
    check(anonymous.post(f"/api/v1/tasks/{running.pk}/stream-token"), 401)
    check(client.post("/api/v1/execute", {"query": "Compute 2 + 2", "wait": False}, format="json"), 202)
    check(client.post("/api/v1/execute", {"query": "Compute 2 + 2", "timeout": 0.1}, format="json"), 202)
    check(client.post("/api/v1/execute", {"query": "q", "timeout": 10_000}, format="json"), 400)
    check(anonymous.post("/api/v1/execute", {"query": "q"}, format="json"), 401)
    check(anonymous.post("/api/v1/auth/token", {"username": "alice", "password": "alice-password"},
                         format="json"), 200)
    check(anonymous.post("/api/v1/auth/token", {"username": "alice", "password": "wrong"}, format="json"), 400)

    documented = {(path, method) for path, item in schema_document["paths"].items()
                  for method in item if path.startswith(("/api/v1/tasks", "/api/v1/execute", "/api/v1/auth"))
                  # Feedback on a task's result belongs to the evals app and is tested there.
                  and "/feedback" not in path
                  # Time travel: tasks/tests/test_api_timetravel.py.
                  and not path.endswith(("/export/", "/import/", "/fork/"))}
    assert documented - check.seen == set()


def test_a_finished_run_with_every_step_kind_matches_the_schema(check, user):
    from tasks.models import Step, StepKind

    task = make_task(user, status="completed")
    for index, kind in enumerate(StepKind.values):
        Step.objects.create(task=task, index=index, kind=kind, status="error" if kind == "error" else "ok",
                            input={"any": ["json", 1]}, output=None if index % 2 else {"result": "r"},
                            error="boom" if kind == "error" else "")
    check(client_for(user).get(f"/api/v1/tasks/{task.pk}/steps"), 200)


def documented_under(document: dict, prefix: str) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item
            if path.startswith(prefix)}


def test_every_tools_operation_matches_the_schema(schema_document, check, defaults, user, monkeypatch):
    if "/api/v1/tools/" not in schema_document["paths"]:
        pytest.skip("no tools API")
    from dataclasses import replace

    from tools import registry

    guarded = replace(registry.get_tool("current_time"), name="guarded_time", requires_approval=True)
    monkeypatch.setitem(registry._REGISTRY, "guarded_time", guarded)
    client, anonymous = client_for(user), APIClient()
    check(client.get("/api/v1/tools/"), 200)
    check(anonymous.get("/api/v1/tools"), 401)
    check(client.post("/api/v1/tools/calculator/invoke", {"arguments": {"expression": "6 * 7"}}, format="json"), 200)
    check(client.post("/api/v1/tools/calculator/invoke", {"arguments": {"expression": "1 / 0"}}, format="json"), 200)
    check(client.post("/api/v1/tools/calculator/invoke", {"arguments": {}}, format="json"), 400)
    check(client.post("/api/v1/tools/calculator/invoke", "{not json", content_type="application/json"), 400)
    check(client.post("/api/v1/tools/calculator/invoke", "x", content_type="text/plain"), 415)
    check(client.post("/api/v1/tools/guarded_time/invoke", {"arguments": {}}, format="json"), 403)
    check(client.post("/api/v1/tools/no-such-tool/invoke", {"arguments": {}}, format="json"), 404)
    check(client.post("/api/v1/tools/ask_human/invoke", {"arguments": {"question": "ok?"}}, format="json"), 409)
    check(anonymous.post("/api/v1/tools/calculator/invoke", {"arguments": {}}, format="json"), 401)
    assert documented_under(schema_document, "/api/v1/tools") - check.seen == set()


def test_every_prompts_operation_matches_the_schema(schema_document, check, defaults, user):
    if "/api/v1/prompts/" not in schema_document["paths"]:
        pytest.skip("no prompts API")
    from prompts.models import PromptVersion

    # Shipped versions have no author: the schema must allow created_by null.
    assert PromptVersion.objects.filter(created_by__isnull=True).exists()
    client = client_for(user)
    check(client.get("/api/v1/prompts/"), 200)
    check(client.get("/api/v1/prompts/?limit=2&offset=1"), 200)
    check(client.get("/api/v1/prompts/plan/"), 200)
    check(client.get("/api/v1/prompts/no-such-prompt"), 404)
    check(APIClient().get("/api/v1/prompts/"), 401)
    check(APIClient().get("/api/v1/prompts/plan"), 401)
    assert documented_under(schema_document, "/api/v1/prompts") - check.seen == set()


def test_every_memory_operation_matches_the_schema(schema_document, check, defaults, user):
    if "/api/v1/memory/" not in schema_document["paths"]:
        pytest.skip("no memory API")
    client = client_for(user)
    check(client.post("/api/v1/memory/", {"content": "PostgreSQL was first released in 1996."}, format="json"), 201)
    check(client.post("/api/v1/memory", {"content": ""}, format="json"), 400)
    check(client.post("/api/v1/memory/", {"content": "x", "kind": "nope"}, format="json"), 400)
    check(client.post("/api/v1/memory/", "x", content_type="text/plain"), 415)
    check(APIClient().post("/api/v1/memory/", {"content": "x"}, format="json"), 401)
    check(client.get("/api/v1/memory/?q=PostgreSQL"), 200)
    check(client.get("/api/v1/memory?q=PostgreSQL&k=2&kind=document&mode=vector"), 200)
    check(client.get("/api/v1/memory/"), 400)
    check(client.get("/api/v1/memory/?q=x&k=0"), 400)
    check(APIClient().get("/api/v1/memory/?q=x"), 401)
    assert documented_under(schema_document, "/api/v1/memory") - check.seen == set()
