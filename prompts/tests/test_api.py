import pytest

from prompts.services import prompt_version_record_use


@pytest.mark.parametrize("path", ["/api/v1/prompts/", "/api/v1/prompts", "/api/v1/prompts/greet"])
def test_anonymous_is_refused_with_the_error_shape(api_client, version, path):
    response = api_client.get(path)
    assert response.status_code in (401, 403)
    assert set(response.json()["error"]) == {"code", "message", "field"}


def test_user_lists_templates_versions_and_statistics(auth_client, template, version, django_assert_max_num_queries):
    prompt_version_record_use(version_id=version.pk, success=True, tokens_in=100, tokens_out=10, latency_ms=200)
    prompt_version_record_use(version_id=version.pk, success=False, tokens_in=300, tokens_out=30, latency_ms=400)
    with django_assert_max_num_queries(6):
        response = auth_client.get("/api/v1/prompts")
    assert response.status_code == 200
    [item] = response.json()["results"]
    assert item["slug"] == "greet" and item["active_version"] == 1
    assert item["required_variables"] == ["name"] and item["response_schema"]["required"] == ["greeting"]
    [listed] = item["versions"]
    assert listed["label"] == "greet@1" and listed["is_active"] and listed["used"]
    assert listed["statistics"] == {"uses": 2, "successes": 1, "failures": 1, "success_rate": 0.5,
                                    "mean_tokens_in": 200.0, "mean_tokens_out": 20.0, "mean_latency_ms": 300.0,
                                    # no step of this version has a price
                                    "cost_usd": 0.0, "priced_uses": 0, "mean_cost_usd": None}


def test_detail_by_slug_and_404_shape(auth_client, version):
    response = auth_client.get("/api/v1/prompts/greet/")
    assert response.status_code == 200 and response.json()["versions"][0]["body"] == "Say hello to {{ name }}."
    missing = auth_client.get("/api/v1/prompts/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_nobody_writes_through_the_api(api_client, staff_user, version, method):
    api_client.force_authenticate(staff_user)
    for path in ("/api/v1/prompts/", "/api/v1/prompts/greet"):
        response = getattr(api_client, method)(path, {"slug": "x"}, format="json")
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "method_not_allowed"
    version.refresh_from_db()
    assert version.body == "Say hello to {{ name }}."
