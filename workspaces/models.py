"""Workspaces, memberships with a role, service tokens and the append-only audit log.

Tasks, memory entries, webhooks, schedules and eval datasets belong to a workspace; a
user sees a workspace's objects through a Membership, whose role says what they may do
there. Roles form a ladder (each one may do what the ones below it may):

    viewer < operator < prompt_editor < admin

Staff remain super-users: they see every workspace and act there as admins.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"  # reads tasks and results
    OPERATOR = "operator", "Operator"  # creates and controls tasks, answers questions, approves tool calls
    PROMPT_EDITOR = "prompt_editor", "Prompt editor"  # edits and activates prompts, datasets, rollouts
    ADMIN = "admin", "Admin"  # members, tokens, webhooks, schedules, the audit log


ROLE_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.PROMPT_EDITOR: 2, Role.ADMIN: 3}


def role_at_least(role: str | None, wanted: str) -> bool:
    return role is not None and ROLE_RANK[Role(role)] >= ROLE_RANK[Role(wanted)]


class Workspace(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    # The workspace every user gets (their default one); NULL for team workspaces.
    personal_for = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="personal_workspace")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["workspace", "user"]
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="membership_workspace_user_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"


class ServiceToken(models.Model):
    """A workspace's token for CI and integrations, with one role.

    It acts as its own user (``user``: no password, member of this workspace only, with the
    token's role), so every interface authenticates and scopes it exactly like a person;
    its key is that user's API token, rotated and revoked through workspaces.services.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="service_tokens")
    name = models.CharField(max_length=100)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="service_token")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["workspace", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.workspace})"


class AppendOnly(Exception):
    """An audit row was about to be changed or deleted; the audit log is append-only."""


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnly("audit events cannot be changed")

    def delete(self):
        raise AppendOnly("audit events cannot be deleted")


class AuditEvent(models.Model):
    """Who did what, when, with the state before and after. Written once by
    workspaces.audit.audit_record; never updated or deleted (also refused by a database
    trigger, see migration 0002)."""

    # NULL: an action outside any workspace (prompts are shared by every workspace).
    workspace = models.ForeignKey(Workspace, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # No foreign key: the log outlives the users it names; ``actor`` keeps the name.
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=50)
    target_type = models.CharField(max_length=50)
    target_id = models.CharField(max_length=64, blank=True, default="")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="audit_workspace_created_idx")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target_type} {self.target_id}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AppendOnly("audit events cannot be changed")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly("audit events cannot be deleted")
