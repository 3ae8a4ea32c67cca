"""Data migration helpers: every user's personal workspace, and moving owned rows into it.

They take the historical ``apps`` registry, as migrations must (no import of today's models).
"""

from __future__ import annotations

from django.conf import settings
from django.utils.text import slugify


def personal_workspace_id(apps, user) -> int:
    """The id of ``user``'s personal workspace, created (with an admin membership) if missing."""
    Workspace = apps.get_model("workspaces", "Workspace")
    Membership = apps.get_model("workspaces", "Membership")
    workspace = Workspace.objects.filter(personal_for_id=user.pk).first()
    if workspace is None:
        slug = f"{slugify(user.username)[:80] or 'user'}-{user.pk}"
        workspace = Workspace.objects.create(name=user.username, slug=slug, personal_for_id=user.pk)
    Membership.objects.get_or_create(workspace_id=workspace.pk, user_id=user.pk, defaults={"role": "admin"})
    return workspace.pk


def give_every_user_a_workspace(apps, schema_editor) -> None:
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    for user in User.objects.order_by("pk").iterator():
        personal_workspace_id(apps, user)


def mover(app_label: str, model_name: str):
    """A RunPython function putting each owned row of the model in its owner's personal
    workspace (rows without an owner stay shared, with no workspace)."""

    def move(apps, schema_editor) -> None:
        User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
        model = apps.get_model(app_label, model_name)
        owners = model.objects.filter(workspace__isnull=True, owner__isnull=False).values_list("owner_id", flat=True)
        for user in User.objects.filter(pk__in=owners.distinct()).order_by("pk"):
            model.objects.filter(owner_id=user.pk, workspace__isnull=True).update(
                workspace_id=personal_workspace_id(apps, user))

    return move
