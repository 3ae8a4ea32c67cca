import pytest
from jsonschema import Draft202012Validator

from tools.models import ToolSetting
from tools.registry import all_tools

pytestmark = pytest.mark.django_db


def test_list_requires_authentication(api_client):
    response = api_client.get("/api/v1/tools/")
    assert response.status_code in (401, 403)
    assert set(response.json()["error"]) == {"code", "message", "field"}


def test_list_returns_valid_schemas(auth_client):
    response = auth_client.get("/api/v1/tools")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == len(all_tools())
    assert {tool["name"] for tool in body["results"]} == {spec.name for spec in all_tools()}
    for tool in body["results"]:
        assert set(tool) == {"name", "description", "parameters", "requires_approval", "side_effects"}
        Draft202012Validator.check_schema(tool["parameters"])


def test_list_hides_disabled_tools(auth_client):
    ToolSetting.objects.create(name="http_get", enabled=False)
    names = [tool["name"] for tool in auth_client.get("/api/v1/tools/").json()["results"]]
    assert "http_get" not in names and "calculator" in names


def test_invoke(auth_client):
    response = auth_client.post("/api/v1/tools/calculator/invoke", {"arguments": {"expression": "2 ** 8"}},
                                format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and body["result"]["result"] == 256 and body["duration_ms"] >= 0


def test_invoke_with_trailing_slash(auth_client):
    response = auth_client.post("/api/v1/tools/calculator/invoke/", {"arguments": {"expression": "1"}},
                                format="json")
    assert response.status_code == 200


def test_invoke_tool_failure_is_an_outcome(auth_client):
    response = auth_client.post("/api/v1/tools/calculator/invoke", {"arguments": {"expression": "__import__('os')"}},
                                format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False and body["error_code"] == "tool_error"
    assert "'__import__' is not allowed" in body["error"]


def test_invoke_requires_authentication(api_client):
    response = api_client.post("/api/v1/tools/calculator/invoke", {"arguments": {"expression": "1"}}, format="json")
    assert response.status_code in (401, 403)


@pytest.mark.parametrize(("body", "field"), [
    ({"arguments": {}}, "arguments"),
    ({"arguments": {"expression": 3}}, "arguments.expression"),
    ({"arguments": "1+1"}, "arguments"),
])
def test_invoke_invalid_arguments(auth_client, body, field):
    response = auth_client.post("/api/v1/tools/calculator/invoke", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == field


def test_invoke_malformed_json(auth_client):
    response = auth_client.post("/api/v1/tools/calculator/invoke", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.json()


def test_invoke_unknown_tool(auth_client):
    for name in ("nope", "Bad-Name"):
        response = auth_client.post(f"/api/v1/tools/{name}/invoke", {"arguments": {}}, format="json")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_invoke_disabled_tool(auth_client):
    ToolSetting.objects.create(name="calculator", enabled=False)
    response = auth_client.post("/api/v1/tools/calculator/invoke", {"arguments": {"expression": "1"}}, format="json")
    assert response.status_code == 404


def test_ask_human_cannot_be_invoked(auth_client):
    response = auth_client.post("/api/v1/tools/ask_human/invoke", {"arguments": {"question": "ok?"}}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "needs_task"


@pytest.fixture
def approval_tool(monkeypatch):
    from dataclasses import replace

    from tools import registry

    spec = replace(registry.get_tool("current_time"), name="guarded_time", requires_approval=True)
    monkeypatch.setitem(registry._REGISTRY, "guarded_time", spec)
    return spec


def test_tool_needing_approval_is_refused_for_non_staff(auth_client, approval_tool):
    response = auth_client.post("/api/v1/tools/guarded_time/invoke", {"arguments": {}}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "approval_required"


def test_tool_needing_approval_runs_for_staff(api_client, staff_user, approval_tool):
    api_client.force_authenticate(staff_user)
    response = api_client.post("/api/v1/tools/guarded_time/invoke", {"arguments": {}}, format="json")
    assert response.status_code == 200 and response.json()["ok"] is True


@pytest.mark.parametrize(("expression", "fragment"), [
    ("(-1)**0.5", "not a real number"),
    ("(-8)**(1/3)", "not a real number"),
    ("round(1, -10**7)", "round() to more than 1000 digits"),
])
def test_invoke_refuses_unreal_or_huge_results_as_a_tool_error(auth_client, expression, fragment):
    import time

    started = time.monotonic()
    response = auth_client.post("/api/v1/tools/calculator/invoke", {"arguments": {"expression": expression}},
                                format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["ok"], body["error_code"]) == (False, "tool_error") and fragment in body["error"]
    assert time.monotonic() - started < 2


def test_invoke_refuses_an_oversized_list_before_looking_at_its_items(auth_client):
    import time

    # 200,000 numbers (600 KB, under the API's body limit) for a 100,000 limit: validating
    # each item first took ~6 s here.
    started = time.monotonic()
    response = auth_client.post("/api/v1/tools/data_analysis/invoke",
                                {"arguments": {"numbers": [1] * 200_000}}, format="json")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["field"] == "arguments.numbers"
    assert "200000 items is more than the 100000 allowed" in response.json()["error"]["message"]
    assert time.monotonic() - started < 2
