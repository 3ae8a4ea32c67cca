"""Changes to workspaces, memberships and service tokens; each writes one audit row."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from rest_framework.authtoken.models import Token

from agentos.api import ApplicationError, Conflict, NotFound
from agentos.jsonguard import text_problem
from workspaces.access import require_role
from workspaces.audit import audit_record
from workspaces.models import Membership, Role, ServiceToken, Workspace


def _role(value) -> str:
    if value not in Role.values:
        raise ApplicationError(f"unknown role {value!r}; use one of {', '.join(Role.values)}", field="role")
    return value


@transaction.atomic
def workspace_create(*, actor, name: str) -> Workspace:
    """A team workspace with ``actor`` as its admin."""
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > 100:
        raise ApplicationError("name must be 1-100 characters", field="name")
    base = slugify(name)[:80] or "workspace"
    slug = base if not Workspace.objects.filter(slug=base).exists() else f"{base}-{secrets.token_hex(3)}"
    workspace = Workspace.objects.create(name=name, slug=slug)
    Membership.objects.create(workspace=workspace, user=actor, role=Role.ADMIN)
    audit_record(actor=actor, action="workspace.create", target_type="workspace", target_id=workspace.pk,
                 workspace_id=workspace.pk, after={"name": name, "admin": actor.get_username()})
    return workspace


@transaction.atomic
def membership_set(*, actor, workspace: Workspace, username: str, role: str) -> Membership:
    """Add ``username`` to the workspace with ``role``, or change their role (admins only)."""
    require_role(actor, workspace.pk, Role.ADMIN, what="workspace")
    role = _role(role)
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None or hasattr(user, "service_token"):
        raise NotFound(f"no user named {username!r}", field="username")
    membership = Membership.objects.select_for_update().filter(workspace=workspace, user=user).first()
    before = {"role": membership.role} if membership else None
    if membership is None:
        membership = Membership.objects.create(workspace=workspace, user=user, role=role)
        action = "membership.add"
    else:
        if membership.role == role:
            return membership
        _keep_an_admin(workspace, membership, role)
        membership.role = role
        membership.save(update_fields=["role"])
        action = "membership.role"
    audit_record(actor=actor, action=action, target_type="membership", target_id=user.get_username(),
                 workspace_id=workspace.pk, before=before, after={"role": role})
    return membership


@transaction.atomic
def membership_remove(*, actor, workspace: Workspace, username: str) -> None:
    require_role(actor, workspace.pk, Role.ADMIN, what="workspace")
    if text_problem(username):  # from the URL; PostgreSQL cannot compare a NUL, and no name has one
        raise NotFound(f"{username!r} is not a member", field="username")
    membership = (Membership.objects.select_for_update().filter(workspace=workspace, user__username=username)
                  .first())
    if membership is None:
        raise NotFound(f"{username!r} is not a member", field="username")
    _keep_an_admin(workspace, membership, None)
    membership.delete()
    audit_record(actor=actor, action="membership.remove", target_type="membership", target_id=username,
                 workspace_id=workspace.pk, before={"role": membership.role}, after=None)


def _keep_an_admin(workspace: Workspace, membership: Membership, new_role: str | None) -> None:
    if membership.role == Role.ADMIN and new_role != Role.ADMIN:
        others = Membership.objects.filter(workspace=workspace, role=Role.ADMIN).exclude(pk=membership.pk)
        if not others.exists():
            raise Conflict("a workspace keeps at least one admin", code="last_admin")


@transaction.atomic
def service_token_create(*, actor, workspace: Workspace, name: str, role: str) -> tuple[ServiceToken, str]:
    """A service token with one role; returns it and its key (shown once)."""
    require_role(actor, workspace.pk, Role.ADMIN, what="workspace")
    role = _role(role)
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > 100:
        raise ApplicationError("name must be 1-100 characters", field="name")
    user = get_user_model()(username=f"svc-{workspace.pk}-{secrets.token_hex(6)}", is_active=True)
    user.set_unusable_password()
    user._service_account = True  # no personal workspace (workspaces.signals)
    user.save()
    Membership.objects.create(workspace=workspace, user=user, role=role)
    token = ServiceToken.objects.create(workspace=workspace, name=name, user=user, created_by=actor)
    key = Token.objects.create(user=user).key
    audit_record(actor=actor, action="token.create", target_type="service_token", target_id=token.pk,
                 workspace_id=workspace.pk, after={"name": name, "role": role})
    return token, key


def _live_token(workspace: Workspace, token_id) -> ServiceToken:
    try:
        token = ServiceToken.objects.select_for_update().get(pk=int(token_id), workspace=workspace)
    except (ServiceToken.DoesNotExist, TypeError, ValueError):
        raise NotFound("service token not found")
    if token.revoked_at is not None:
        raise Conflict("this token is revoked", code="revoked")
    return token


@transaction.atomic
def service_token_rotate(*, actor, workspace: Workspace, token_id) -> tuple[ServiceToken, str]:
    """A new key for the token; the old key stops working at once."""
    require_role(actor, workspace.pk, Role.ADMIN, what="workspace")
    token = _live_token(workspace, token_id)
    Token.objects.filter(user=token.user).delete()
    key = Token.objects.create(user=token.user).key
    audit_record(actor=actor, action="token.rotate", target_type="service_token", target_id=token.pk,
                 workspace_id=workspace.pk, after={"name": token.name})
    return token, key


@transaction.atomic
def service_token_revoke(*, actor, workspace: Workspace, token_id) -> ServiceToken:
    require_role(actor, workspace.pk, Role.ADMIN, what="workspace")
    token = _live_token(workspace, token_id)
    Token.objects.filter(user=token.user).delete()
    token.user.is_active = False
    token.user.save(update_fields=["is_active"])
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(actor=actor, action="token.revoke", target_type="service_token", target_id=token.pk,
                 workspace_id=workspace.pk, before={"name": token.name}, after={"revoked_at": token.revoked_at})
    return token


def api_key_rotated(*, user, created: bool = False) -> None:
    """Audit a personal API key's creation or rotation (in the user's default workspace)."""
    from workspaces.access import default_workspace

    audit_record(actor=user, action="token.create" if created else "token.rotate", target_type="api_key",
                 target_id=user.get_username(), workspace_id=default_workspace(user).pk)
