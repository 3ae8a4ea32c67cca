"""Models of the tasks app: agents, tasks and their append-only step log.

The step log *is* the state of a run (factor 5): the engine rebuilds everything it needs
from the steps; the columns on Task are either control inputs (flags, budget, options),
lease bookkeeping, or caches of values derived from the log (progress, counters, results)
so that lists and dashboards never have to read every step.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

MIN_AGENT_STEPS = 3
MAX_AGENT_STEPS = 10


class AgentSpec(models.Model):
    """A small, focused micro-agent (factor 10): a prompt, a tool allow-list and a step cap."""

    name = models.SlugField(max_length=50, unique=True)
    description = models.TextField()
    prompt_slug = models.SlugField(
        max_length=100, help_text="Slug of the prompt template this agent renders for each of its LLM steps."
    )
    allowed_tools = models.JSONField(default=list, blank=True, help_text="List of tool names the agent may call.")
    max_steps = models.PositiveSmallIntegerField(
        default=6,
        validators=[MinValueValidator(MIN_AGENT_STEPS), MaxValueValidator(MAX_AGENT_STEPS)],
        help_text=f"LLM steps per subtask ({MIN_AGENT_STEPS}-{MAX_AGENT_STEPS}).",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_steps__gte=MIN_AGENT_STEPS) & Q(max_steps__lte=MAX_AGENT_STEPS),
                name="agentspec_max_steps_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        tools = self.allowed_tools
        if not isinstance(tools, list) or not all(isinstance(name, str) and name for name in tools):
            raise ValidationError({"allowed_tools": "Must be a list of tool names."})
        try:
            from tools.registry import all_tools
        except ImportError:  # the tools app is optional for this check
            return
        known = {spec.name for spec in all_tools()}
        unknown = sorted(set(tools) - known)
        if unknown:
            raise ValidationError({"allowed_tools": f"Unknown tools: {', '.join(unknown)}."})


class TaskStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    WAITING_HUMAN = "waiting_human"
    WAITING_PROVIDER = "waiting_provider"  # the model provider is unavailable; the task tries again by itself
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_STATUSES = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)
# Statuses a worker may take a lease on (and the requeue job looks after).
ACTIVE_STATUSES = (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.WAITING_PROVIDER)


def default_step_budget() -> int:
    return settings.TASK_STEP_BUDGET


class Trigger(models.TextChoices):
    API = "api"
    PAGE = "page"
    CLI = "cli"
    WEBHOOK = "webhook"
    SCHEDULE = "schedule"


class Task(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tasks")
    # Who may see and control it (workspaces.access); the owner's default workspace when not given.
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.PROTECT, related_name="tasks",
                                  db_index=False)
    query = models.TextField()
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.QUEUED)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.API)
    trigger_details = models.JSONField(default=dict, blank=True)
    options = models.JSONField(default=dict, blank=True, help_text="e.g. allow_human, require_approval, agents.")
    callback_url = models.URLField(max_length=500, null=True, blank=True)  # noqa: DJ001 (null = no callback)

    # Control inputs, set by the services and read by the runner between steps.
    pause_requested = models.BooleanField(default=False)
    cancel_requested = models.BooleanField(default=False)
    step_budget = models.PositiveIntegerField(default=default_step_budget)

    # Caches of values derived from the step log (written with every step commit).
    progress = models.FloatField(default=0.0)
    step_count = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0, help_text="Estimate of the steps the run will take.")
    intermediate_results = models.JSONField(default=list, blank=True)
    waiting_for = models.JSONField(null=True, blank=True)
    # The model provider's error the task is waiting out (kind "transient", with next_try_at),
    # paused for (kind "configuration": an operator must act, then resume) or failed with.
    provider_error = models.JSONField(null=True, blank=True)
    result = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")

    # Lease: which worker may commit steps, until when (fencing; see tasks/store.py, tasks/leases.py).
    lease_owner = models.CharField(max_length=120, null=True, blank=True)  # noqa: DJ001 (NULL = no lease)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)

    # What the task's model calls cost (USD), summed by the step store (observability/cost.py),
    # and the W3C traceparent of its trace, so every slice joins it (observability/tracing.py).
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal(0))
    trace_parent = models.CharField(max_length=55, blank=True, default="")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # Time travel (tasks/timetravel): a fork's log starts with steps 0..forked_at_step of
    # forked_from; fork_edit records what the fork changed at that point (another answer to
    # a question, a corrected model output), or is null. imported_at: the run was imported
    # from an export and never ran here. Written once, when the task is created.
    forked_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="forks",
                                    db_index=False)
    forked_at_step = models.PositiveIntegerField(null=True, blank=True)
    fork_edit = models.JSONField(null=True, blank=True)
    imported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="task_owner_created_idx"),
            # The dashboard and the list API: a workspace's tasks, newest first (also serves the FK).
            models.Index(fields=["workspace", "-created_at"], name="task_workspace_created_idx"),
            models.Index(fields=["status", "-created_at"], name="task_status_created_idx"),
            # A workspace's tasks in one status, newest first (the status filter of the dashboard
            # and the list API). No index on created_at alone: the planner would walk it for a
            # workspace's list too, through every newer task of other workspaces.
            models.Index(fields=["workspace", "status", "-created_at"], name="task_workspace_status_idx"),
            # An owner's active tasks, counted for every run_task message (tasks/fairness.py);
            # partial: only the few active rows. Status is indexed anyway, so this costs no
            # HOT updates.
            models.Index(fields=["owner"], name="task_owner_active_idx",
                         condition=Q(status__in=[status.value for status in ACTIVE_STATUSES])),
            # A task's forks (its page lists them); partial: most tasks are not forks.
            models.Index(fields=["forked_from"], name="task_forked_from_idx", condition=Q(forked_from__isnull=False)),
        ]
        # No index on the lease, progress or counter columns: every committed step updates
        # them, and an update that changes no indexed column is a HOT update (no index
        # entries written; see migration 0003, which also leaves free space in each page for
        # it). The requeue job's query ("active tasks whose lease expired or that were never
        # picked up") finds the few active rows through task_status_created_idx.

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class StepKind(models.TextChoices):
    TRIGGER = "trigger"  # step 0: where the task came from (api, page, cli, webhook, schedule)
    PLAN = "plan"
    LLM = "llm"
    TOOL = "tool"
    HUMAN_REQUEST = "human_request"
    HUMAN_RESPONSE = "human_response"
    SUMMARY = "summary"
    SYNTHESIS = "synthesis"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    ERROR = "error"
    RESULT = "result"
    PROVIDER_WAIT = "provider_wait"  # a transient provider failure: the task waits, then tries again
    RETRY = "retry"  # a failed task continues from its last good step


class StepStatus(models.TextChoices):
    OK = "ok"
    ERROR = "error"


class AppendOnlyError(Exception):
    """A step row was about to be rewritten; the step log is append-only."""


class Step(models.Model):
    # No index of its own: step_task_index_unique (task, index) serves every look-up by task,
    # and one index fewer is one index insertion fewer per committed step.
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="steps", db_index=False)
    index = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=StepKind.choices)
    agent = models.CharField(max_length=50, blank=True, default="")
    subtask_id = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=8, choices=StepStatus.choices, default=StepStatus.OK)
    input = models.JSONField(default=dict, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    # LLM steps: the prompt version used ("<slug>@<n>"), and what rebuilds the exact messages
    # (version id, template variables, indexes of the steps in the history); see tasks/context.py.
    prompt_label = models.CharField(max_length=120, blank=True, default="")
    context = models.JSONField(null=True, blank=True)
    context_hash = models.CharField(max_length=64, blank=True, default="")
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    # Some of the counts come from the offline tokenizer: the provider reported no usage.
    tokens_estimated = models.BooleanField(default=False)
    duration_ms = models.PositiveIntegerField(default=0)
    # Model steps: who served the call, the cached share of tokens_in, and the cost computed
    # from the price table when the step was stored (NULL: not a model call, or no price).
    provider = models.CharField(max_length=20, blank=True, default="")
    model = models.CharField(max_length=120, blank=True, default="")
    tokens_cached = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "index"]
        constraints = [
            # The last line of defence of "a step is committed at most once": two writers that
            # both believe they hold the lease cannot both insert index N.
            models.UniqueConstraint(fields=["task", "index"], name="step_task_index_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.task_id}#{self.index} {self.kind}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AppendOnlyError(f"step {self} exists; steps are append-only")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)
