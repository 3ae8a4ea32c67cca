"""The time travel endpoints: export, import, fork; as owner, other user and anonymous; and
hostile import documents (always a 400 in the error shape, never a 500, nothing stored)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from django.test import override_settings

from prompts.models import PromptTemplate, PromptVersion
from tasks.models import Step, Task
from tasks.tests.test_schema_api import check, client_for, schema_document  # noqa: F401 (fixtures)
from tasks.tests.test_timetravel_replay import same_run

pytestmark = pytest.mark.django_db
SAMPLE = Path(__file__).parent / "runs" / "note-and-confirmation.json"


@pytest.fixture
def document() -> dict:
    return json.loads(SAMPLE.read_text())


@pytest.fixture
def imported(agents_defaults, auth_client, document) -> Task:
    response = auth_client.post("/api/v1/tasks/import", document, format="json")
    assert response.status_code == 201, response.json()
    return Task.objects.get(pk=response.json()["task_id"])


def counts() -> tuple[int, int, int, int]:
    return Task.objects.count(), Step.objects.count(), PromptVersion.objects.count(), PromptTemplate.objects.count()


def test_import_then_export_round_trips(imported, auth_client, document, user):
    body = auth_client.get(f"/api/v1/tasks/{imported.pk}/export/")
    assert body.status_code == 200 and "attachment" in body["Content-Disposition"]
    exported = body.json()
    assert exported["source"]["task_id"] == str(imported.pk) and exported["source"]["imported_at"]
    # The run itself (engine and tools describe this installation today), prompts named by content.
    assert same_run(exported) == same_run(document)
    detail = auth_client.get(f"/api/v1/tasks/{imported.pk}").json()
    assert (detail["status"], detail["forked_from"], imported.owner) == ("completed", None, user)


def test_export_and_fork_are_for_the_workspace_only(imported, api_client, other_user, staff_user):
    for path, method in ((f"/api/v1/tasks/{imported.pk}/export", "get"), (f"/api/v1/tasks/{imported.pk}/fork", "post")):
        api_client.force_authenticate(None)
        assert getattr(api_client, method)(path, {"at": 1}, format="json").status_code == 401
        api_client.force_authenticate(other_user)
        response = getattr(api_client, method)(path, {"at": 1}, format="json")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    api_client.force_authenticate(staff_user)  # staff are super-users: they read and fork any task
    assert api_client.get(f"/api/v1/tasks/{imported.pk}/export").status_code == 200
    fork = api_client.post(f"/api/v1/tasks/{imported.pk}/fork", {"at": 1}, format="json")
    assert fork.status_code == 201
    assert Task.objects.get(pk=fork.json()["task_id"]).workspace_id == imported.workspace_id
    api_client.force_authenticate(None)
    assert api_client.post("/api/v1/tasks/import", {}, format="json").status_code == 401


def test_fork_over_the_api_answers_the_question_differently(imported, auth_client, document):
    question = next(step for step in document["steps"] if step["kind"] == "human_request")
    response = auth_client.post(f"/api/v1/tasks/{imported.pk}/fork/", {"at": question["index"], "answer": "no"},
                                format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["forked_from"] == {"task_id": str(imported.pk), "step": question["index"]}
    assert body["status"] == "queued" and body["urls"]["websocket"].endswith(f"/ws/tasks/{body['task_id']}/")
    assert response["Location"] == body["urls"]["self"]
    fork = Task.objects.get(pk=body["task_id"])
    assert fork.step_count == question["index"] + 2 and fork.fork_edit["value"] == "no"


def made_elsewhere(document: dict) -> dict:
    """The sample run as if made on another installation: its plan prompt worded differently
    (a version missing here) and its synthesis prompt under a template missing here."""
    changed = copy.deepcopy(document)
    for prompt in changed["prompts"]:
        if prompt["slug"] == "plan":
            prompt["body"] += "\nAn older wording."
        elif prompt["slug"] == "synthesize":
            prompt["slug"], prompt["label"] = "synthesize-elsewhere", "synthesize-elsewhere@1"
    for step in changed["steps"]:
        if step["prompt_version"] == "synthesize@1":
            step["prompt_version"] = "synthesize-elsewhere@1"
    return changed


def linked(task: Task) -> dict[str, int | None]:
    """Each model step's prompt label -> the prompt version its context links (None: none)."""
    return {step.prompt_label: (step.context or {}).get("version_id")
            for step in Step.objects.filter(task=task).exclude(prompt_label="")}


def linked_pk(slug: str, number: int = 1) -> int:
    return PromptVersion.objects.get(template__slug=slug, number=number).pk


def test_an_import_that_needs_new_prompts_is_refused_to_who_may_not_edit_prompts(agents_defaults, auth_client,
                                                                                  document):
    from workspaces.models import AuditEvent

    before = counts()
    response = auth_client.post("/api/v1/tasks/import", made_elsewhere(document), format="json")
    assert response.status_code == 403, response.json()
    error = response.json()["error"]
    assert error["code"] == "forbidden" and error["field"] == "prompts[2]"  # plan@1, the first missing
    assert "plan@1" in error["message"] and "synthesize-elsewhere@1" in error["message"]
    assert counts() == before  # no task, no step, no prompt template or version
    assert not AuditEvent.objects.filter(action__startswith="prompt.").exists()
    # A bad prompt is still a 400 naming it, whoever imports.
    bad = made_elsewhere(document)
    bad["prompts"][3]["body"] += " {{ unclosed"
    response = auth_client.post("/api/v1/tasks/import", bad, format="json")
    assert response.status_code == 400 and response.json()["error"]["field"] == "prompts[3].body"


def test_a_prompt_editor_imports_the_missing_prompts_then_anyone_may(agents_defaults, api_client, user, other_user,
                                                                     document):
    from workspaces.models import Membership, Workspace

    team = Workspace.objects.create(name="Prompts", slug="prompts")
    Membership.objects.create(workspace=team, user=user, role="prompt_editor")
    api_client.force_authenticate(user)
    before = counts()
    response = api_client.post("/api/v1/tasks/import", made_elsewhere(document), format="json")
    assert response.status_code == 201, response.json()
    assert counts()[2:] == (before[2] + 2, before[3] + 1)
    created = PromptVersion.objects.filter(template__slug="plan").latest("number")
    assert not created.is_active and created.created_by == user
    elsewhere = PromptVersion.objects.get(template__slug="synthesize-elsewhere")
    assert linked(Task.objects.get(pk=response.json()["task_id"])) == {
        "agent_research@1": linked_pk("agent_research"), "agent_synthesis@1": linked_pk("agent_synthesis"),
        created.label: created.pk, "synthesize-elsewhere@1": elsewhere.pk}
    # Now the prompts are here: someone who may not edit prompts imports the run, matched by content.
    api_client.force_authenticate(other_user)
    response = api_client.post("/api/v1/tasks/import", made_elsewhere(document), format="json")
    assert response.status_code == 201, response.json()
    assert counts()[2:] == (before[2] + 2, before[3] + 1)
    assert linked(Task.objects.get(pk=response.json()["task_id"]))[created.label] == created.pk


@pytest.mark.parametrize("body, field", [
    ({}, "at"), ({"at": "3"}, "at"), ({"at": -1}, "at"), ({"at": 10_000}, "at"), ({"at": 1, "answer": 5}, "answer"),
    ({"at": 0, "output": {"action": "finish", "result": "x"}}, "at"), ({"at": 1, "output": {"subtasks": []}}, "output"),
])
def test_fork_input_errors(imported, auth_client, body, field):
    response = auth_client.post(f"/api/v1/tasks/{imported.pk}/fork", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["field"] == field


def _set(document: dict, path: str, value) -> dict:
    changed = copy.deepcopy(document)
    *parents, last = path.split(".")
    node = changed
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    key = int(last) if isinstance(node, list) else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return changed


DELETE = object()
HOSTILE = [
    ("format", "something.else", "format"),
    ("version", 2, "version"),
    ("task.status", "running", "task.status"),
    ("task.status", "failed", "task.status"),  # the log ends completed
    ("task.query", "", "task.query"),
    ("task.query", 42, "task.query"),
    ("task.trigger", "mystery", "task.trigger"),
    ("task.options", {"step_budget": "10"}, "task.options.step_budget"),
    ("task.options", {"agents": ["nobody"]}, "task.options.agents"),
    ("task.step_budget", True, "task.step_budget"),
    ("task.created_at", "yesterday", "task.created_at"),
    ("task.created_at", "2026-01-01T00:00:00", "task.created_at"),
    ("task.owner", 1, "task.owner"),
    ("steps", [], "steps"),
    ("steps", {"0": {}}, "steps"),
    ("steps.3.index", 7, "steps[3].index"),
    ("steps.3.kind", "teleport", "steps[3].kind"),
    ("steps.3.status", "fine", "steps[3].status"),
    ("steps.3.input", [1, 2], "steps[3].input"),
    ("steps.3.tokens_in", -5, "steps[3].tokens_in"),
    ("steps.3.tokens_in", 2**40, "steps[3].tokens_in"),
    ("steps.3.agent", "x" * 51, "steps[3].agent"),
    ("steps.3.created_at", None, "steps[3].created_at"),
    ("steps.3.id", 99, "steps[3].id"),
    ("steps.3", DELETE, "steps[3].index"),
    ("steps.1.prompt_version", "plan@999", "steps[1].prompt_version"),
    ("steps.1.context_hash", "not a hash", "steps[1].context_hash"),
    ("steps.2.context.steps", [5], "steps[2].context.steps[0]"),
    ("steps.2.context.version_id", 1, "steps[2].context.version_id"),
    ("prompts.0.label", "other@1", "prompts[0].label"),
    ("prompts.0.slug", "../../etc", "prompts[0].slug"),
    ("prompts.0.body", "{{ unclosed", "prompts[0].body"),
    ("prompts.0.temperature", 9, "prompts[0].temperature"),
    ("engine.agents.0.max_steps", "six", "engine.agents[0].max_steps"),
    ("engine.context_budget", 0, "engine.context_budget"),
    ("tools.0.side_effects", "yes", "tools[0].side_effects"),
]


@pytest.mark.parametrize("path, value, field", HOSTILE, ids=[f"{p}={str(v)[:20]}" for p, v, _ in HOSTILE])
def test_a_bad_document_is_a_400_naming_the_field_and_stores_nothing(agents_defaults, auth_client, document, path,
                                                                     value, field):
    before = counts()
    response = auth_client.post("/api/v1/tasks/import", _set(document, path, value), format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["field"] == field, error
    assert error["code"] and error["message"]
    assert counts() == before


def test_hostile_bodies(agents_defaults, auth_client, document):
    before = counts()
    deep = document
    for _ in range(100):
        deep = {"x": deep}
    for body in (json.dumps(deep), "[1, 2]", '"text"', "null", '{"format": NaN}', '{"a": "\\u0000"}',
                 json.dumps(_set(document, "steps.3.output", {"text": "\ud800"}), ensure_ascii=True)):
        response = auth_client.generic("POST", "/api/v1/tasks/import", body, content_type="application/json")
        assert response.status_code == 400, (body[:80], response.content[:300])
        assert set(response.json()["error"]) == {"code", "message", "field"}
    assert counts() == before


@override_settings(API_MAX_BODY_BYTES=4096)
def test_an_import_over_the_body_limit_is_a_413(agents_defaults, auth_client, document):
    response = auth_client.generic("POST", "/api/v1/tasks/import", json.dumps(document),
                                   content_type="application/json")
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"


def test_the_time_travel_operations_match_the_schema(imported, check, schema_document, user, other_user,  # noqa: F811
                                                     document):
    client = client_for(user)
    check(client.get(f"/api/v1/tasks/{imported.pk}/export"), 200)
    check(client_for(other_user).get(f"/api/v1/tasks/{imported.pk}/export/"), 404)
    check(client.post("/api/v1/tasks/import/", document, format="json"), 201)
    check(client.post("/api/v1/tasks/import", {"format": "x"}, format="json"), 400)
    check(client.post("/api/v1/tasks/import", "x", content_type="text/plain"), 415)
    question = next(step for step in document["steps"] if step["kind"] == "human_request")
    check(client.post(f"/api/v1/tasks/{imported.pk}/fork", {"at": question["index"]}, format="json"), 201)
    check(client.post(f"/api/v1/tasks/{imported.pk}/fork", {"at": "x"}, format="json"), 400)
    check(client_for(other_user).post(f"/api/v1/tasks/{imported.pk}/fork", {"at": 1}, format="json"), 404)
    documented = {(path, method) for path, item in schema_document["paths"].items() for method in item
                  if path.endswith(("/export/", "/import/", "/fork/"))}
    assert documented - check.seen == set()
