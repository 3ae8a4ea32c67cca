"""Who may see and do what in which workspace: the one place every interface asks.

- Outside the caller's workspaces an object does not exist (NotFound, 404), so its
  existence never leaks.
- A member whose role is too low to act gets Forbidden (403): they can see it, not do it.
- Staff see every workspace and act as admins there.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from rest_framework import status

from agentos.api import ApplicationError, NotFound
from workspaces.models import Membership, Role, Workspace, role_at_least


class Forbidden(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "forbidden"


def is_superuser(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.is_staff)


def member_workspace_ids(user, *, at_least: str = Role.VIEWER):
    """A subquery of the ids of the workspaces where ``user`` has at least role ``at_least``."""
    roles = [role for role in Role.values if role_at_least(role, at_least)]
    return Membership.objects.filter(user_id=getattr(user, "pk", None), role__in=roles).values("workspace_id")


def scope(queryset: QuerySet, user, *, field: str = "workspace") -> QuerySet:
    """``queryset`` narrowed to the rows of ``user``'s workspaces (staff: all rows)."""
    if is_superuser(user):
        return queryset
    return queryset.filter(**{f"{field}__in": member_workspace_ids(user)})


def may_edit_prompts(user) -> bool:
    """Prompts, their versions and rollouts are shared by every workspace: staff edit them, and
    so does whoever is a prompt editor (or admin) of a team workspace. A personal workspace,
    where everyone is admin, does not count."""
    if is_superuser(user):
        return True
    if not (getattr(user, "is_authenticated", False) and user.is_active):
        return False
    roles = [role for role in Role.values if role_at_least(role, Role.PROMPT_EDITOR)]
    return Membership.objects.filter(user_id=user.pk, role__in=roles, workspace__personal_for__isnull=True).exists()


def role_of(user, workspace_id) -> str | None:
    """The role of ``user`` in the workspace, ``admin`` for staff, None for a non-member."""
    if is_superuser(user):
        return Role.ADMIN
    if workspace_id is None or not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.filter(user_id=user.pk, workspace_id=workspace_id).values_list("role", flat=True).first()


def require_role(user, workspace_id, wanted: str, *, what: str = "object") -> str:
    """The caller's role in the workspace if it is at least ``wanted``.

    NotFound when the caller is not a member (the object might as well not exist), Forbidden
    when they are a member whose role does not allow the action.
    """
    role = role_of(user, workspace_id)
    if role is None:
        raise NotFound(f"{what} not found")
    if not role_at_least(role, wanted):
        raise Forbidden(f"your role in this workspace ({role}) does not allow this; it needs {wanted}")
    return role


def workspaces_for_user(*, user, at_least: str = Role.VIEWER) -> QuerySet[Workspace]:
    workspaces = Workspace.objects.all()
    if is_superuser(user) and at_least:
        return workspaces
    return workspaces.filter(pk__in=member_workspace_ids(user, at_least=at_least))


def default_workspace(user) -> Workspace:
    """Where a user's new tasks and data go unless they name a workspace: their personal
    workspace, else (a service token's user) the one workspace they belong to."""
    personal = Workspace.objects.filter(personal_for=user).first()
    if personal is not None:
        return personal
    membership = Membership.objects.filter(user=user).select_related("workspace").order_by("created_at").first()
    if membership is not None:
        return membership.workspace
    return personal_workspace_create(user=user)


def workspace_for_write(*, user, workspace_id=None, at_least: str = Role.OPERATOR) -> Workspace:
    """The workspace a new object goes to: ``workspace_id`` if given (the caller needs role
    ``at_least`` there), else the caller's default workspace (same check)."""
    if workspace_id in (None, ""):
        workspace = default_workspace(user)
    else:
        try:
            workspace = Workspace.objects.get(pk=int(workspace_id))
        except (Workspace.DoesNotExist, TypeError, ValueError):
            raise NotFound("workspace not found", field="workspace")
    require_role(user, workspace.pk, at_least, what="workspace")
    return workspace


def personal_slug(user) -> str:
    from django.utils.text import slugify

    return f"{slugify(user.get_username())[:80] or 'user'}-{user.pk}"


@transaction.atomic
def personal_workspace_create(*, user) -> Workspace:
    """The user's personal workspace, with the user as its admin (created once)."""
    workspace, _ = Workspace.objects.get_or_create(
        personal_for=user, defaults={"name": user.get_username(), "slug": personal_slug(user)})
    Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": Role.ADMIN})
    return workspace
