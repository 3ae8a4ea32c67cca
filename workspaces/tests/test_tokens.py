"""Workspace service tokens: one role, usable on every interface, rotatable and revocable;
personal keys act with their user's roles."""

from __future__ import annotations

from rest_framework.test import APIClient


def admin_api(team) -> APIClient:
    client = APIClient()
    client.force_authenticate(team.members["admin"])
    return client


def with_key(key: str) -> APIClient:
    return APIClient(headers={"Authorization": f"Token {key}"})


def create_token(team, role: str) -> dict:
    response = admin_api(team).post(f"/api/v1/workspaces/{team.workspace.pk}/tokens", {"name": "ci", "role": role},
                                    format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_service_token_acts_with_its_role_in_its_workspace_only(team, other_user):
    from tasks.models import Task

    viewer = with_key(create_token(team, "viewer")["key"])
    assert viewer.get(f"/api/v1/tasks/{team.task.pk}").status_code == 200
    assert viewer.post(f"/api/v1/tasks/{team.task.pk}/pause").status_code == 403
    assert viewer.post("/api/v1/tasks/", {"query": "Hi"}, format="json").status_code == 403
    operator = with_key(create_token(team, "operator")["key"])
    created = operator.post("/api/v1/tasks/", {"query": "Hi"}, format="json")
    assert created.status_code == 201  # into the token's workspace, its default
    assert Task.objects.get(pk=created.json()["task_id"]).workspace_id == team.workspace.pk
    other = Task.objects.create(owner=other_user, query="private")
    assert operator.get(f"/api/v1/tasks/{other.pk}").status_code == 404


def test_rotate_and_revoke(team):
    token = create_token(team, "operator")
    base = f"/api/v1/workspaces/{team.workspace.pk}/tokens/{token['id']}"
    rotated = admin_api(team).post(f"{base}/rotate")
    assert rotated.status_code == 200 and rotated.json()["key"] != token["key"]
    assert with_key(token["key"]).get("/api/v1/tasks/").status_code == 401
    assert with_key(rotated.json()["key"]).get("/api/v1/tasks/").status_code == 200
    assert admin_api(team).post(f"{base}/revoke").status_code == 200
    assert with_key(rotated.json()["key"]).get("/api/v1/tasks/").status_code == 401
    assert admin_api(team).post(f"{base}/rotate").status_code == 409
    listed = admin_api(team).get(f"/api/v1/workspaces/{team.workspace.pk}/tokens").json()["tokens"]
    assert listed[0]["revoked_at"] is not None and "key" not in listed[0]


def test_only_admins_manage_tokens_and_members(team):
    for who, status in (("operator", 403), ("prompt_editor", 403), ("outsider", 404)):
        client = APIClient()
        client.force_authenticate(team.members[who])
        base = f"/api/v1/workspaces/{team.workspace.pk}"
        assert client.post(f"{base}/tokens", {"name": "x", "role": "admin"}, format="json").status_code == status
        assert client.post(f"{base}/members", {"username": "t-outsider", "role": "admin"},
                           format="json").status_code == status
        assert client.get(f"{base}/tokens").status_code == status


def test_members_and_the_last_admin(team):
    client = admin_api(team)
    base = f"/api/v1/workspaces/{team.workspace.pk}"
    added = client.post(f"{base}/members", {"username": "t-outsider", "role": "viewer"}, format="json")
    assert added.status_code == 200
    outsider = APIClient()
    outsider.force_authenticate(team.members["outsider"])
    assert outsider.get(f"/api/v1/tasks/{team.task.pk}").status_code == 200  # now a viewer
    assert client.post(f"{base}/members", {"username": "nobody", "role": "viewer"}, format="json").status_code == 404
    assert client.post(f"{base}/members", {"username": "t-viewer", "role": "owner"}, format="json").status_code == 400
    demote = client.post(f"{base}/members", {"username": "t-admin", "role": "viewer"}, format="json")
    assert demote.status_code == 409 and demote.json()["error"]["code"] == "last_admin"
    assert client.delete(f"{base}/members/t-outsider").status_code == 204
    assert outsider.get(f"/api/v1/tasks/{team.task.pk}").status_code == 404
    roles = {m["username"]: m["role"] for m in client.get(f"{base}/members").json()["members"]}
    assert roles == {"t-viewer": "viewer", "t-operator": "operator", "t-prompt_editor": "prompt_editor",
                     "t-admin": "admin"}


def test_workspace_list_shows_your_role(team):
    client = APIClient()
    client.force_authenticate(team.members["viewer"])
    workspaces = client.get("/api/v1/workspaces/").json()["workspaces"]
    assert {(w["name"], w["role"], w["personal"]) for w in workspaces} == {("Team", "viewer", False),
                                                                         ("t-viewer", "admin", True)}


def test_a_viewer_token_may_not_run_tools(team):
    viewer = with_key(create_token(team, "viewer")["key"])
    operator = with_key(create_token(team, "operator")["key"])
    body = {"arguments": {"expression": "6 * 7"}}
    refused = viewer.post("/api/v1/tools/calculator/invoke", body, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert operator.post("/api/v1/tools/calculator/invoke", body, format="json").status_code == 200


def test_member_token_and_workspace_lists_take_the_same_queries_for_one_or_many(team, django_user_model):
    """The lists answer with a fixed number of queries, however many members, tokens or
    workspaces there are (each token's role and member's token flag are not looked up one by one)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from workspaces.models import Membership, Workspace

    client, base = admin_api(team), f"/api/v1/workspaces/{team.workspace.pk}"
    admin = team.members["admin"]

    def queries(path: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        return len(captured)

    create_token(team, "viewer")
    before = {path: queries(path) for path in (f"{base}/members", f"{base}/tokens", "/api/v1/workspaces/")}
    for number in range(4):
        create_token(team, "operator")
        extra = Workspace.objects.create(name=f"Extra {number}", slug=f"extra-{number}")
        Membership.objects.create(workspace=extra, user=admin, role="operator")
    after = {path: queries(path) for path in before}
    assert after == before
    tokens = client.get(f"{base}/tokens").json()["tokens"]
    assert sorted(token["role"] for token in tokens) == ["operator"] * 4 + ["viewer"]
    members = client.get(f"{base}/members").json()["members"]
    assert sum(member["service_token"] for member in members) == 5
    roles = {w["name"]: w["role"] for w in client.get("/api/v1/workspaces/").json()["workspaces"]}
    assert roles["Team"] == "admin" and roles["Extra 0"] == "operator"
