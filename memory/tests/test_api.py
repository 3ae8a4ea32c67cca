"""GET/POST /api/v1/memory as anonymous, owner and another user."""

import pytest

from memory.services import memory_add

pytestmark = pytest.mark.django_db


@pytest.fixture
def entries(user, other_user):
    return {
        "shared": memory_add(owner=None, content="Redis listens on port 6379 by default.", kind="document"),
        "mine": memory_add(owner=user, content="My Redis server runs on port 6380 in staging."),
        "theirs": memory_add(owner=other_user, content="Bob's secret Redis password rotates weekly."),
    }


def test_anonymous_is_rejected(api_client, entries):
    assert api_client.get("/api/v1/memory/?q=redis").status_code in (401, 403)
    response = api_client.post("/api/v1/memory", {"content": "x"}, format="json")
    assert response.status_code in (401, 403)
    assert "error" in response.json()


def test_search_sees_own_and_shared_not_others(auth_client, entries):
    response = auth_client.get("/api/v1/memory/", {"q": "Redis port password", "k": 10})
    assert response.status_code == 200
    ids = {hit["id"] for hit in response.json()["results"]}
    assert ids == {entries["shared"].id, entries["mine"].id}
    hit = response.json()["results"][0]
    assert set(hit) == {"id", "content", "kind", "score", "metadata"}


def test_other_user_sees_own_and_shared(api_client, other_user, entries):
    api_client.force_authenticate(other_user)
    response = api_client.get("/api/v1/memory", {"q": "Redis", "k": 10, "mode": "vector"})
    ids = {hit["id"] for hit in response.json()["results"]}
    assert ids == {entries["shared"].id, entries["theirs"].id}


def test_kind_filter(auth_client, entries):
    response = auth_client.get("/api/v1/memory/", {"q": "Redis port", "kind": "document"})
    assert [hit["id"] for hit in response.json()["results"]] == [entries["shared"].id]


@pytest.mark.parametrize(
    ("params", "field"),
    [({}, "q"), ({"q": "   "}, "q"), ({"q": "x", "k": 0}, "k"), ({"q": "x", "k": 51}, "k"),
     ({"q": "x", "k": "many"}, "k"), ({"q": "x", "kind": "secret"}, "kind"), ({"q": "x", "mode": "fuzzy"}, "mode")],
)
def test_search_validation(auth_client, params, field):
    response = auth_client.get("/api/v1/memory/", params)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_post_creates_owned_entry_findable_only_by_owner(auth_client, api_client, user, other_user):
    response = auth_client.post("/api/v1/memory", {"content": "The deploy key lives in vault path ops/deploy.",
                                                    "metadata": {"tag": "ops"}}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["kind"] == "note" and body["metadata"] == {"tag": "ops"} and body["shared"] is False
    hits = auth_client.get("/api/v1/memory/", {"q": "deploy key vault"}).json()["results"]
    assert hits[0]["id"] == body["id"]
    api_client.force_authenticate(other_user)
    assert api_client.get("/api/v1/memory/", {"q": "deploy key vault"}).json()["results"] == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [({}, "content"), ({"content": ""}, "content"), ({"content": "x", "kind": "secret"}, "kind"),
     ({"content": "x", "metadata": [1]}, "metadata"), ({"content": "x" * 20001}, "content")],
)
def test_post_validation(auth_client, payload, field):
    response = auth_client.post("/api/v1/memory/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_post_malformed_json_is_400(auth_client):
    response = auth_client.post("/api/v1/memory/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.json()


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_a_query_without_features_is_not_a_server_error(auth_client, entries, mode):
    # "ÿ" and punctuation embed to the zero vector, whose cosine distance is NaN.
    for query in ("ÿ", "!!!"):
        response = auth_client.get("/api/v1/memory/", {"q": query, "mode": mode})
        assert response.status_code == 200, response.content
        assert all(hit["score"] == hit["score"] for hit in response.json()["results"])


def test_multipart_body_is_415_in_the_error_shape(auth_client):
    response = auth_client.generic("POST", "/api/v1/memory/", b"--x\r\nbroken", content_type="multipart/form-data")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_huge_pagination_values_are_clamped(auth_client):
    response = auth_client.get("/api/v1/prompts/", {"limit": "5" * 40, "offset": "9" * 40})
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("content", ['"\\ud8c4 lone surrogate"', '"nul \\u0000 inside"'])
def test_text_postgresql_cannot_store_is_400(auth_client, content):
    body = '{"content": ' + content + '}'
    response = auth_client.generic("POST", "/api/v1/memory/", body.encode(), content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in ("invalid_unicode", "null_characters_not_allowed")
    assert response.json()["error"]["field"] == "content"


def test_an_entry_without_features_does_not_break_vector_search(auth_client, user):
    from memory.services import memory_add

    memory_add(owner=user, content="ÿ", kind="note")  # embeds to the zero vector
    memory_add(owner=user, content="PostgreSQL uses MVCC", kind="note")
    response = auth_client.get("/api/v1/memory/", {"q": "MVCC PostgreSQL", "mode": "vector", "kind": "note", "k": 28})
    assert response.status_code == 200, response.content
    assert response.json()["results"][0]["content"] == "PostgreSQL uses MVCC"


def test_search_query_longer_than_1000_characters_is_400(auth_client):
    response = auth_client.get("/api/v1/memory/", {"q": "x" * 1001})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "q"
