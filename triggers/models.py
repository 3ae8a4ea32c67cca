"""Models of the triggers app: inbound webhooks, schedules, callback secrets and attempts.

Tasks started here are ordinary tasks (tasks.Task) with ``trigger`` "webhook" or "schedule";
this app only decides *when* to create them and *where* to report back.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models


def generate_secret() -> str:
    # 32 random bytes; the prefix makes a leaked value easy to recognise in logs and scanners.
    return "whsec_" + secrets.token_hex(32)


class Webhook(models.Model):
    """An inbound URL, POST /hooks/<id>/, that starts a task for ``owner`` from a signed JSON body."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhooks")
    # Where the tasks it starts go (the owner's default workspace when not given).
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.PROTECT, related_name="webhooks")
    name = models.CharField(max_length=100)
    secret = models.CharField(max_length=100, default=generate_secret,
                              help_text="Signs inbound deliveries and this hook's callbacks.")
    enabled = models.BooleanField(default=True)
    options = models.JSONField(default=dict, blank=True,
                               help_text='Agent settings for the tasks it starts, e.g. {"allow_human": false}.')
    query_template = models.TextField(
        blank=True, default="",
        help_text="Optional Jinja2 (sandboxed) filled from the JSON payload: its top-level keys, and "
                  "the whole body as {{ payload }}. Empty: the payload's \"query\" field is used.")
    callback_url = models.URLField(max_length=500, blank=True, default="",
                                   help_text="Optional: receives task.completed / task.failed / "
                                             "task.waiting_human events for the tasks this hook starts.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One accepted delivery, identified by what its sender signed: the signature's timestamp
    and the body (SHA-256). However its signature header is worded, a captured request is
    the same row, so it can start at most one task; the unique constraint decides between
    copies arriving at once. Rows are kept while their timestamp is still accepted (the
    signature tolerance) and then pruned (triggers.jobs.prune_webhook_deliveries)."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    signed_at = models.BigIntegerField(help_text="The t= of the signature header (unix seconds).")
    body_sha256 = models.CharField(max_length=64)
    task = models.ForeignKey("tasks.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["webhook", "signed_at", "body_sha256"], name="webhook_delivery_once"),
        ]
        # The pruning job deletes by timestamp across all hooks.
        indexes = [models.Index(fields=["signed_at"], name="webhook_delivery_signed_idx")]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.webhook_id} t={self.signed_at} {self.body_sha256[:12]}"


class CallbackSecret(models.Model):
    """Per-user key that signs callbacks of tasks not started by a webhook."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                 related_name="callback_secret")
    secret = models.CharField(max_length=100, default=generate_secret)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"callback secret of {self.owner}"


class ScheduledQuery(models.Model):
    """A stored query run by Celery beat; ``periodic_task`` is the beat entry behind it."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scheduled_queries")
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.PROTECT, related_name="schedules")
    name = models.CharField(max_length=100, help_text="Unique in its workspace.")
    query = models.TextField()
    options = models.JSONField(default=dict, blank=True)
    callback_url = models.URLField(max_length=500, blank=True, default="")
    enabled = models.BooleanField(default=True)
    periodic_task = models.OneToOneField("django_celery_beat.PeriodicTask", on_delete=models.SET_NULL,
                                         null=True, blank=True, related_name="scheduled_query")
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_task_id = models.UUIDField(null=True, blank=True)
    # Why the last run started no task (empty once a run starts one): triggers.schedules.
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "scheduled queries"
        # Per workspace, so one team's names neither block nor reveal another's.
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="scheduled_query_name_unique")]

    def __str__(self) -> str:
        return self.name


class CallbackEvent(models.TextChoices):
    COMPLETED = "task.completed"
    FAILED = "task.failed"
    WAITING_HUMAN = "task.waiting_human"


class CallbackAttempt(models.Model):
    """One POST of one event to a task's callback URL; every attempt is kept, retries included."""

    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="callback_attempts")
    delivery_id = models.UUIDField(help_text="Same for every attempt of one event (sent as X-AgentOS-Delivery).")
    url = models.URLField(max_length=500)
    event = models.CharField(max_length=32, choices=CallbackEvent.choices)
    attempt = models.PositiveSmallIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    error = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "created_at"]
        indexes = [
            models.Index(fields=["task", "created_at"], name="callback_attempt_task_idx"),
            models.Index(fields=["delivery_id"], name="callback_attempt_delivery_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} #{self.attempt} -> {self.status_code or self.error[:40]}"
