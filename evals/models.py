"""Datasets of test items with checks, eval runs over them, and people's feedback on tasks.

A dataset belongs to a workspace (its owner's by default) and its members see it (staff see
all); a dataset without owner is shipped with the product (prompts' defaults) and readable
by everyone. An item is either a task query
(``query``) or the variables of the dataset's prompt template (``variables``), or both:
the variables are rendered into the version's body and the query is the user message.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Dataset(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="datasets", help_text="Empty: shipped with AgentOS, readable by all.")
    workspace = models.ForeignKey("workspaces.Workspace", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="datasets", help_text="Empty for shipped datasets.")
    name = models.SlugField(max_length=100)
    description = models.TextField(blank=True)
    template = models.ForeignKey("prompts.PromptTemplate", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="datasets",
                                 help_text="The prompt template whose variables the items give (optional).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="evals_dataset_owner_name_unique"),
            models.UniqueConstraint(fields=["name"], condition=Q(owner__isnull=True),
                                    name="evals_dataset_shipped_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class DatasetItem(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="items")
    query = models.TextField(blank=True, help_text="A task query; also the user message of the call.")
    variables = models.JSONField(default=dict, blank=True,
                                 help_text="Template variables; missing ones come from the template's samples.")
    checks = models.JSONField(default=list, blank=True, help_text="See docs/evals.md for the check types.")
    note = models.CharField(max_length=500, blank=True)
    source_task = models.ForeignKey("tasks.Task", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", help_text="The task this item was made from.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset", "id"]

    def __str__(self) -> str:
        return f"{self.dataset.name}#{self.pk}"

    @property
    def summary(self) -> str:
        text = self.query or ", ".join(f"{key}={value}" for key, value in sorted(self.variables.items()))
        return text if len(text) <= 80 else text[:79] + "…"


class EvalRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="eval_runs", help_text="Empty for runs started from the command line.")
    workspace = models.ForeignKey("workspaces.Workspace", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="eval_runs")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey("prompts.PromptVersion", on_delete=models.PROTECT, related_name="eval_runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    concurrency = models.PositiveSmallIntegerField(default=1)
    provider = models.CharField(max_length=40, blank=True)
    model = models.CharField(max_length=200, blank=True)
    # Progress counters, changed only with UPDATE ... SET x = x + 1 as items finish.
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    passed = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    latency_ms_total = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="evals_run_owner_created_idx")]

    def __str__(self) -> str:
        return f"eval {self.pk}: {self.version} on {self.dataset}"

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.done if self.done else None

    @property
    def mean_latency_ms(self) -> float | None:
        return self.latency_ms_total / self.done if self.done else None

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.COMPLETED, self.Status.FAILED)


class EvalResult(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        ERROR = "error", "error (no usable output)"

    run = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="results")
    item = models.ForeignKey(DatasetItem, on_delete=models.CASCADE, related_name="results")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    passed = models.BooleanField(null=True)
    output = models.JSONField(null=True, blank=True)
    text = models.TextField(blank=True)
    error = models.TextField(blank=True)
    checks = models.JSONField(default=list, blank=True, help_text="[{type, verdict, message}] per check.")
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "item_id"]
        constraints = [models.UniqueConstraint(fields=["run", "item"], name="evals_result_run_item_unique")]
        # Workers claim the next pending item of a run (FOR UPDATE SKIP LOCKED).
        indexes = [models.Index(fields=["run", "id"], condition=Q(status="pending"), name="evals_result_pending_idx")]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.item_id} {self.status}"


class TaskFeedback(models.Model):
    """👍 or 👎 with an optional comment on a task's result; one per user and task, editable."""

    class Rating(models.IntegerChoices):
        UP = 1, "👍"
        DOWN = -1, "👎"

    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="task_feedback")
    rating = models.SmallIntegerField(choices=Rating.choices)
    comment = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["task", "user"], name="evals_feedback_task_user_unique"),
            models.CheckConstraint(condition=Q(rating__in=[1, -1]), name="evals_feedback_rating_values"),
        ]

    def __str__(self) -> str:
        return f"{self.get_rating_display()} {self.task_id} by {self.user_id}"
