"""Prompt templates and their immutable, measured versions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from prompts.tokens import count_tokens

CONTENT_FIELDS = ("body", "temperature", "max_tokens")


class PromptTemplate(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    response_schema = models.JSONField(
        null=True, blank=True, help_text="JSON Schema (draft 2020-12) the model's answer must validate against."
    )
    required_variables = models.JSONField(default=list, blank=True,
                                          help_text="Variables every render must supply, e.g. [\"query\"].")
    optional_variables = models.JSONField(default=list, blank=True,
                                          help_text="Variables a body may use but a caller may omit.")
    sample_variables = models.JSONField(default=dict, blank=True,
                                        help_text="Example variables for the admin preview.")
    # sha256 of the response schema as the default loader last wrote it: when the stored
    # schema still has this digest nobody edited it, so a newer shipped schema may replace it.
    shipped_schema_digest = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def declared_variables(self) -> set[str]:
        return set(self.required_variables or []) | set(self.optional_variables or [])


class PromptVersion(models.Model):
    class Origin(models.TextChoices):
        SHIPPED = "shipped", "shipped default"
        USER = "user", "written by a user"

    template = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    body = models.TextField(help_text="Jinja2 (sandboxed, strict about undefined variables).")
    temperature = models.FloatField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    token_count = models.PositiveIntegerField(default=0, editable=False,
                                              help_text="o200k_base tokens of the body as written.")
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.USER, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=500, blank=True, help_text="What changed and why.")
    is_active = models.BooleanField(default=False, editable=False)

    # Statistics, only ever changed with atomic UPDATE ... SET x = x + n (see services).
    uses = models.PositiveBigIntegerField(default=0, editable=False)
    successes = models.PositiveBigIntegerField(default=0, editable=False)
    failures = models.PositiveBigIntegerField(default=0, editable=False)
    tokens_in_total = models.PositiveBigIntegerField(default=0, editable=False)
    tokens_out_total = models.PositiveBigIntegerField(default=0, editable=False)
    latency_ms_total = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["template__slug", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="prompts_version_number_unique"),
            # At most one active version per template, enforced by PostgreSQL itself; this
            # partial index also serves the hot "active version of <slug>" lookup.
            models.UniqueConstraint(fields=["template"], condition=Q(is_active=True),
                                    name="prompts_one_active_version"),
            models.CheckConstraint(condition=Q(number__gte=1), name="prompts_version_number_positive"),
            models.CheckConstraint(condition=Q(temperature__isnull=True) | Q(temperature__gte=0, temperature__lte=2),
                                   name="prompts_version_temperature_range"),
            models.CheckConstraint(condition=Q(max_tokens__isnull=True) | Q(max_tokens__gte=1),
                                   name="prompts_version_max_tokens_positive"),
        ]

    def __str__(self) -> str:
        return self.label

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            stored = (PromptVersion.objects.filter(pk=self.pk, uses__gt=0)
                      .values(*CONTENT_FIELDS).first())
            if stored and any(stored[name] != getattr(self, name) for name in CONTENT_FIELDS):
                # Last line of defence; services.prompt_version_edit makes a new version instead.
                from prompts.errors import PromptError

                raise PromptError(f"prompt {self.label} has been used and cannot be changed; create a new version")
        self.token_count = count_tokens(self.body)
        super().save(*args, **kwargs)

    @property
    def label(self) -> str:
        return f"{self.template.slug}@{self.number}"

    @property
    def used(self) -> bool:
        return self.uses > 0

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.uses if self.uses else None

    def _mean(self, total: int) -> float | None:
        return total / self.uses if self.uses else None

    @property
    def mean_tokens_in(self) -> float | None:
        return self._mean(self.tokens_in_total)

    @property
    def mean_tokens_out(self) -> float | None:
        return self._mean(self.tokens_out_total)

    @property
    def mean_latency_ms(self) -> float | None:
        return self._mean(self.latency_ms_total)


class PromptRollout(models.Model):
    """A candidate version serving a share of tasks beside the active version.

    At most one rollout per template runs at a time (partial unique index). Each arm's
    statistics are the version's counters minus ``baseline`` (their values when the rollout
    started), so uses from before the rollout never weigh on its verdict.
    """

    class Status(models.TextChoices):
        RUNNING = "running"
        PROMOTED = "promoted"
        STOPPED = "stopped"
        AUTO_STOPPED = "auto_stopped", "stopped automatically"

    template = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="rollouts")
    active_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="+",
                                       help_text="The version that was active when the rollout started.")
    candidate = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="candidate_rollouts")
    weight = models.FloatField(help_text="Percent of tasks (0.01–100) that get the candidate.")
    min_uses = models.PositiveIntegerField(help_text="Candidate uses before the automatic stop may fire.")
    failure_margin = models.FloatField(
        help_text="Automatic stop when the candidate's failure rate exceeds the active one's by more than this "
                  "(0.1 = 10 percentage points).")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    baseline = models.JSONField(default=dict, editable=False,
                                help_text="Both versions' counters when the rollout started.")
    stop_reason = models.TextField(blank=True, default="")
    stop_numbers = models.JSONField(null=True, blank=True, editable=False,
                                    help_text="The per-arm figures that ended the rollout.")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            # Also serves the "running rollout of <template>" lookups.
            models.UniqueConstraint(fields=["template"], condition=Q(status="running"),
                                    name="prompts_one_running_rollout"),
            models.CheckConstraint(condition=Q(weight__gt=0, weight__lte=100), name="prompts_rollout_weight_range"),
            models.CheckConstraint(condition=Q(failure_margin__gte=0, failure_margin__lte=1),
                                   name="prompts_rollout_margin_range"),
            models.CheckConstraint(condition=~Q(candidate=models.F("active_version")),
                                   name="prompts_rollout_candidate_not_active"),
        ]

    def __str__(self) -> str:
        return f"{self.candidate.label} at {self.weight:g} % ({self.status})"
