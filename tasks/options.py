"""A task's options and callback URL: defined and validated here, once.

The API serializers nest :class:`TaskOptionsSerializer` (so the OpenAPI schema shows the
options) and :func:`tasks.services.task_create` runs the same serializer through
:func:`clean_task_options`, so the API, the pages, the webhooks, the schedules and the CLI
accept exactly the same options with the same bounds.

Fields are strict: ``"10"`` is not a step budget and ``"yes"`` is not a boolean, the JSON
type must be the documented one (DRF's own fields coerce both silently).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from agentos.api import ApplicationError, _first_validation_error

MIN_STEP_BUDGET = 5
MAX_STEP_BUDGET = 1000
MAX_SUBTASKS = 10
MAX_AGENTS = 20
MAX_APPROVAL_TOOLS = 50
MAX_COST_BUDGET = 1_000_000


class StrictCharField(serializers.CharField):
    """A string, and only a string (DRF's CharField would turn 42 or true into text)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictSlugField(serializers.SlugField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: not "10", not 10.0, not true."""

    default_error_messages = {"invalid": "A valid integer is required (a JSON number, not text)."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A JSON number: not "10"."""

    default_error_messages = {"invalid": "A valid number is required (a JSON number, not text)."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false: not "yes", 1 or "true"."""

    default_error_messages = {"invalid": "Must be true or false (a JSON boolean)."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class TaskOptionsSerializer(serializers.Serializer):
    """Options of a run; every entry point's options pass through here."""

    agents = serializers.ListField(child=StrictSlugField(max_length=50), required=False, min_length=1,
                                   max_length=MAX_AGENTS,
                                   help_text="Restrict the plan to these agents (names of enabled agents).")
    step_budget = StrictIntegerField(required=False, min_value=MIN_STEP_BUDGET, max_value=MAX_STEP_BUDGET,
                                     help_text="Model and tool steps the task may take.")
    max_subtasks = StrictIntegerField(required=False, min_value=1, max_value=MAX_SUBTASKS,
                                      help_text="At most this many subtasks in the plan.")
    cost_budget = StrictFloatField(required=False, min_value=0.000001, max_value=MAX_COST_BUDGET,
                                   help_text="USD the task's model calls may cost (from the price table); once "
                                             "reached, the task fails with \"cost budget exhausted\".")
    allow_human = StrictBooleanField(required=False, help_text="May the agents ask a person (default true).")
    require_approval = serializers.ListField(child=StrictCharField(max_length=100), required=False,
                                             max_length=MAX_APPROVAL_TOOLS,
                                             help_text="Tool names whose calls wait for a person's approval.")

    def validate_agents(self, value: list[str]) -> list[str]:
        from tasks.models import AgentSpec

        enabled = set(AgentSpec.objects.filter(enabled=True).values_list("name", flat=True))
        unknown = sorted(set(value) - enabled)
        if unknown:
            raise serializers.ValidationError(
                f"Unknown or disabled agents: {', '.join(unknown)}; choose from {', '.join(sorted(enabled))}.",
                code="invalid_choice")
        return value

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Options must be a JSON object."]},
                                              code="invalid")
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {unknown[0]: [f"Unknown option; known options are {', '.join(self.fields)}."]})
        return super().to_internal_value(data)


def clean_task_options(options: Any) -> dict:
    """The validated options, or ApplicationError naming ``options.<key>``."""
    if options is None:
        return {}
    serializer = TaskOptionsSerializer(data=options)
    if not serializer.is_valid():
        field, message, code = _first_validation_error(serializer.errors, "options")
        raise ApplicationError(message, field=field or "options", code=code)
    return dict(serializer.validated_data)


def callback_url_problem(url: str) -> str | None:
    """Why ``url`` may not receive callbacks, or None.

    The delivery rules (triggers/callbacks.py, tools/net.py) checked when the URL is saved:
    http(s) only, the host on CALLBACK_ALLOWED_HOSTS, and no loopback, private, link-local
    or metadata address unless HTTP_ALLOW_PRIVATE_ADDRESSES is on. Delivery checks again,
    since what a name resolves to can change.
    """
    from tools.net import URLNotAllowed, check_url_allowed

    try:
        check_url_allowed(url, allowed_hosts=settings.CALLBACK_ALLOWED_HOSTS)
    except URLNotAllowed as error:
        return str(error).replace("HTTP_GET_ALLOWED_HOSTS", "CALLBACK_ALLOWED_HOSTS")
    return None


def validate_callback_url(value: str) -> str:
    """A DRF validator: refuses URLs that delivery would refuse."""
    problem = callback_url_problem(value)
    if problem:
        raise serializers.ValidationError(f"This callback URL is not allowed: {problem}.", code="url_not_allowed")
    return value
