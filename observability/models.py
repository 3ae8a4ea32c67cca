"""The price table: what a provider charges for a model's tokens, per million."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models

PRICE_DIGITS = {"max_digits": 12, "decimal_places": 6, "validators": [MinValueValidator(Decimal(0))]}


class ModelPrice(models.Model):
    """One provider's prices for one model, in US dollars per million tokens.

    ``model`` matches the model name the provider reports exactly, or as its prefix
    (``gpt-4o-mini`` prices ``gpt-4o-mini-2024-07-18``); the longest matching row wins.
    A step's cost is computed once, when the step is stored, so editing a price changes
    the cost of later steps only.
    """

    provider = models.CharField(max_length=20, help_text="openai, anthropic or offline (LLM_PROVIDER).")
    model = models.CharField(max_length=120, help_text="The model name, or a prefix of the names it prices.")
    input_per_million = models.DecimalField(**PRICE_DIGITS, help_text="USD per million input tokens.")
    output_per_million = models.DecimalField(**PRICE_DIGITS, help_text="USD per million output tokens.")
    cached_input_per_million = models.DecimalField(
        **PRICE_DIGITS, null=True, blank=True,
        help_text="USD per million cached input tokens; empty means the input price.")
    is_example = models.BooleanField(
        default=False, help_text="An example row shipped with AgentOS: check it against the provider's price list.")
    note = models.CharField(max_length=200, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "model"]
        constraints = [models.UniqueConstraint(fields=["provider", "model"], name="modelprice_provider_model_unique")]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


LIMIT_HELP = "Empty: the setting ({setting}, or the model's entry in LLM_MODEL_LIMITS). 0: no limit."


class ModelLimit(models.Model):
    """Limits of one model over all workers on all hosts (tasks/limits.py), edited here
    instead of in the environment. Each field overrides the setting when filled in; each
    worker process reads the table at most LLM_LIMITS_REFRESH_SECONDS late, so an edit
    takes effect without a restart."""

    model = models.CharField(max_length=120, unique=True,
                             help_text="The model name exactly as configured (LLM_MODEL), e.g. gpt-4o-mini.")
    max_in_flight = models.PositiveIntegerField(
        null=True, blank=True, help_text="Calls in flight at once. " + LIMIT_HELP.format(setting="LLM_MAX_IN_FLIGHT"))
    requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Calls started in any 60 s. " + LIMIT_HELP.format(setting="LLM_REQUESTS_PER_MINUTE"))
    tokens_per_minute = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Prompt and output tokens in any 60 s. " + LIMIT_HELP.format(setting="LLM_TOKENS_PER_MINUTE"))
    note = models.CharField(max_length=200, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model"]

    def __str__(self) -> str:
        return self.model
