"""Every new user gets a personal workspace; objects saved without a workspace go to their
owner's default workspace (so every existing way of creating them keeps working)."""

from __future__ import annotations

from django.conf import settings
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

# The models that belong to a workspace, each with an ``owner`` (NULL owner: shared, no workspace).
SCOPED_MODELS = ("tasks.Task", "memory.MemoryEntry", "triggers.Webhook", "triggers.ScheduledQuery",
                 "evals.Dataset", "evals.EvalRun")


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def give_personal_workspace(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw and not getattr(instance, "_service_account", False):
        from workspaces.access import personal_workspace_create

        personal_workspace_create(user=instance)


@receiver(post_save, sender="workspaces.Workspace")
def forget_workspace_name(sender, instance, raw: bool = False, **kwargs) -> None:
    from workspaces.selectors import workspace_name_forget

    workspace_name_forget(instance.pk)


def fill_workspace(sender, instance, raw: bool = False, **kwargs) -> None:
    if raw:
        return
    if getattr(instance, "workspace_id", None) is None and getattr(instance, "owner_id", None) is not None:
        from workspaces.access import default_workspace

        instance.workspace_id = default_workspace(instance.owner).pk


for _label in SCOPED_MODELS:
    pre_save.connect(fill_workspace, sender=_label, dispatch_uid=f"fill_workspace:{_label}")
