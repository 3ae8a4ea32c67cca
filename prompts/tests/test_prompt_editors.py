"""The prompt editors' site (/prompt-editor/): prompt editors and admins of a team workspace,
who are not staff, edit and activate prompt versions and run rollouts there; every change
writes one audit row; other roles, and the admin of a personal workspace only, are kept out."""

from __future__ import annotations

import pytest
from django.urls import reverse

from prompts.models import PromptRollout, PromptVersion
from prompts.services import prompt_version_create
from workspaces.models import AuditEvent, Membership, Workspace

pytestmark = pytest.mark.django_db

SITE = "prompt_editor"


def url(name: str, *args) -> str:
    return reverse(f"admin:prompts_{name}", args=args, current_app=SITE)


@pytest.fixture
def team(db):
    return Workspace.objects.create(name="Team", slug="team")


@pytest.fixture
def member(client, django_user_model, team):
    def login(role: str | None):
        user = django_user_model.objects.create_user(f"m-{role}", password="pw")
        if role:
            Membership.objects.create(workspace=team, user=user, role=role)
        client.force_login(user)
        return user
    return login


def rows(since: int) -> list[tuple[str, str]]:
    return [(event.action, event.actor) for event in AuditEvent.objects.order_by("id") if event.pk > since]


def last_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_the_site_has_its_own_address_and_only_prompt_pages(client, member):
    assert url("promptversion_changelist") == "/prompt-editor/prompts/promptversion/"
    assert reverse("admin:prompts_promptversion_changelist") == "/admin/prompts/promptversion/"
    member("prompt_editor")
    assert client.get("/prompt-editor/tasks/agentspec/").status_code == 404
    assert client.get("/prompt-editor/workspaces/auditevent/").status_code == 404
    assert client.get("/prompt-editor/r/1/1/").status_code == 404


@pytest.mark.parametrize("role", ["prompt_editor", "admin"])
def test_a_prompt_editor_edits_activates_and_rolls_out(client, member, role, version):
    editor = member(role)
    assert client.get("/prompt-editor/").status_code == 200
    assert client.get(url("promptversion_changelist")).status_code == 200
    # The staff admin stays closed to them.
    assert client.get(reverse("admin:prompts_promptversion_changelist")).status_code == 302

    before = last_id()
    response = client.post(url("promptversion_add"), {"template": version.template_id, "body": "Yo {{ name }}",
                                                      "note": "casual"})
    assert response.status_code == 302, response.content.decode()[:2000]
    added = PromptVersion.objects.get(template=version.template, number=2)
    assert added.created_by == editor and not added.is_active
    # The redirect and the page's links stay on the editors' site.
    assert response["Location"].startswith("/prompt-editor/")
    page = client.get(url("promptversion_change", added.pk)).content.decode()
    assert url("promptversion_activate", added.pk) in page and "/admin/prompts/" not in page
    assert client.get(url("promptversion_preview", added.pk)).status_code == 200
    assert client.get(url("promptversion_diff", added.pk)).status_code == 200
    assert rows(before) == [("prompt.version.create", editor.username)]

    before = last_id()
    response = client.post(url("promptversion_activate", added.pk))
    assert response.status_code == 302 and response["Location"] == url("promptversion_change", added.pk)
    added.refresh_from_db()
    assert added.is_active
    assert rows(before) == [("prompt.version.activate", editor.username)]

    before = last_id()
    response = client.post(url("promptrollout_add"), {"candidate": version.pk, "weight": 10})
    assert response.status_code == 302, response.content.decode()[:2000]
    rollout = PromptRollout.objects.get()
    assert rollout.started_by == editor and rollout.candidate == version
    client.post(url("promptrollout_changelist"), {"action": "stop_selected", "_selected_action": [rollout.pk]})
    rollout.refresh_from_db()
    assert rollout.status == "stopped"
    assert rows(before) == [("prompt.rollout.start", editor.username), ("prompt.rollout.stop", editor.username)]


def test_editors_edit_a_used_version_as_a_new_one_and_delete_nothing(client, member, used_version):
    member("prompt_editor")
    draft = prompt_version_create(template=used_version.template, body="Draft {{ name }}")
    assert client.get(url("promptversion_delete", draft.pk)).status_code == 403
    assert client.get(url("promptversion_delete", used_version.pk)).status_code == 403
    listing = client.get(url("promptversion_changelist")).content.decode()
    assert "delete_selected" not in listing


@pytest.mark.parametrize("role", ["viewer", "operator", None])
def test_lower_roles_and_personal_workspace_admins_are_kept_out(client, member, role, version):
    user = member(role)
    # Every user is the admin of their personal workspace: that does not make them an editor.
    assert Membership.objects.filter(user=user, workspace__personal_for=user, role="admin").exists()
    for address in ("/prompt-editor/", url("promptversion_changelist"), url("promptversion_change", version.pk),
                    url("promptversion_preview", version.pk)):
        response = client.get(address)
        assert response.status_code == 302 and "/prompt-editor/login/" in response["Location"], address
    response = client.post(url("promptversion_activate", version.pk))
    assert response.status_code == 302 and "login" in response["Location"]
    before = last_id()
    client.post(url("promptversion_add"), {"template": version.template_id, "body": "Sneaky {{ name }}"})
    assert not PromptVersion.objects.filter(body__startswith="Sneaky").exists() and rows(before) == []


def test_an_editor_signs_in_on_the_site_with_a_password(client, django_user_model, team):
    user = django_user_model.objects.create_user("signer", password="pw-123456")
    Membership.objects.create(workspace=team, user=user, role="prompt_editor")
    response = client.post("/prompt-editor/login/?next=/prompt-editor/",
                           {"username": "signer", "password": "pw-123456", "next": "/prompt-editor/"})
    assert response.status_code == 302 and response["Location"] == "/prompt-editor/"
    assert client.get("/prompt-editor/").status_code == 200


def test_staff_use_the_editors_site_too(client, staff_user, version):
    client.force_login(staff_user)
    assert client.get(url("promptversion_change", version.pk)).status_code == 200


def test_the_workspaces_page_links_editors_to_the_site(client, member):
    member("prompt_editor")
    assert 'href="/prompt-editor/"' in client.get("/workspaces/").content.decode()
    member("operator")
    assert 'href="/prompt-editor/"' not in client.get("/workspaces/").content.decode()


def test_the_site_has_the_admin_content_security_policy(client, member, version):
    member("prompt_editor")
    policy = client.get(url("promptversion_diff", version.pk))["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in policy and "script-src 'self';" in policy
