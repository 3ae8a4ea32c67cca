"""Input validation and the documented shapes of the tasks API.

The output serializers describe, for the OpenAPI schema, the dicts built by
``tasks.presenters`` (the one place the task and step shapes are defined); the views return
those dicts as they are, and tests/test_schema_api.py checks the two agree.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agentos.api import ErrorDetailSerializer, ErrorSerializer  # noqa: F401 (the one error shape, shared)
from tasks.models import StepKind, StepStatus, TaskStatus, Trigger
from tasks.options import (  # noqa: F401 (MIN/MAX_STEP_BUDGET: re-exported for older imports)
    MAX_STEP_BUDGET,
    MIN_STEP_BUDGET,
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    TaskOptionsSerializer,
    validate_callback_url,
)

# --- inputs ------------------------------------------------------------------------------

def validate_query(value: str) -> str:
    # Read at call time (not at import) so the limit follows settings, in tests too.
    limit = settings.QUERY_MAX_LENGTH
    if len(value) > limit:
        raise serializers.ValidationError(f"Ensure this field has no more than {limit} characters.",
                                          code="max_length")
    return value


class TaskCreateInputSerializer(serializers.Serializer):
    query = StrictCharField(validators=[validate_query], help_text="What the agents should do.")
    options = TaskOptionsSerializer(required=False)
    callback_url = StrictCharField(required=False, max_length=500, validators=[validate_callback_url],
                                   help_text="Receives task.completed / task.failed / task.waiting_human events "
                                             "(signed). The host must be on CALLBACK_ALLOWED_HOSTS and public.")
    workspace = serializers.IntegerField(required=False, min_value=1,
                                         help_text="The workspace the task goes to (you must be an operator "
                                                   "there); default: your personal workspace.")


class ExecuteInputSerializer(TaskCreateInputSerializer):
    timeout = StrictFloatField(required=False, min_value=0.0,
                               help_text="Seconds to wait for the result (default EXECUTE_DEFAULT_TIMEOUT, "
                                         "at most EXECUTE_MAX_TIMEOUT).")
    wait = StrictBooleanField(required=False, default=True, help_text="false: return 202 at once with the task's URLs.")

    def validate_timeout(self, value: float) -> float:
        limit = settings.EXECUTE_MAX_TIMEOUT
        if value > limit:
            raise serializers.ValidationError(f"Ensure this value is less than or equal to {limit}.",
                                              code="max_value")
        return value


class RespondInputSerializer(serializers.Serializer):
    # 4000 = tasks.services.ANSWER_MAX_LENGTH
    answer = StrictCharField(required=False, max_length=4000,
                             help_text='The answer to the question; for an approval also "yes" or "no".')
    approve = StrictBooleanField(required=False, help_text="The decision on a tool call waiting for approval.")
    comment = StrictCharField(required=False, allow_blank=True, max_length=2000, default="")

    def validate(self, attrs: dict) -> dict:
        if "answer" not in attrs and "approve" not in attrs:
            raise serializers.ValidationError({"answer": "Send answer (a question) or approve (an approval)."},
                                              code="required")
        return attrs


class TokenInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=512, trim_whitespace=False, style={"input_type": "password"})


# --- outputs (documentation of the presenters' dicts) -----------------------------------

class IntermediateResultSerializer(serializers.Serializer):
    subtask = serializers.CharField()
    agent = serializers.CharField()
    status = serializers.CharField()
    result = serializers.CharField(allow_null=True)


_STRING, _NUMBER, _INTEGER = {"type": "string"}, {"type": "number", "nullable": True}, {"type": "integer"}


@extend_schema_field({
    "type": "object", "nullable": True, "required": ["kind", "code", "message"],
    "description": "Why the model provider holds the task up: waiting_provider (kind transient: it tries again at "
                   "next_try_at), paused (kind configuration: an operator must fix the provider settings, then "
                   "resume) or failed (the outage outlasted LLM_OUTAGE_MAX_SECONDS); null otherwise.",
    "properties": {
        "kind": {"type": "string", "enum": ["transient", "configuration"],
                 "description": "Who acts: nobody (the task tries again) or an operator."},
        "code": {**_STRING, "description": "rate_limited, server_error, timeout, bad_response, auth_error, "
                                           "unknown_model, unsupported_parameter, ..."},
        "message": {**_STRING, "description": "One line for people, e.g. \"waiting for the model provider "
                                              "(rate_limited), next try at 2026-12-03T13:45:02Z\"."},
        "next_try_at": {**_STRING, "format": "date-time", "description": "Waiting: when the call is tried again."},
        "since": {**_STRING, "format": "date-time", "description": "When the outage began."},
        "attempt": {**_INTEGER, "description": "Waiting: the tries so far in this outage."},
        "retry_after": _NUMBER,
        "status": {"type": "integer", "nullable": True, "description": "The provider's HTTP status."},
        "step": {**_INTEGER, "description": "The step that recorded the error."},
    },
})
class ProviderErrorField(serializers.JSONField):
    """``Task.provider_error`` (tasks/outage.py), documented field by field."""


class TaskWorkspaceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class TaskSerializer(serializers.Serializer):
    task_id = serializers.UUIDField()
    query = serializers.CharField()
    status = serializers.ChoiceField(choices=TaskStatus.choices)
    trigger = serializers.ChoiceField(choices=Trigger.choices)
    current_step = serializers.IntegerField(help_text="Steps committed so far.")
    total_steps = serializers.IntegerField(help_text="Estimate of the steps the run will take.")
    progress = serializers.FloatField(min_value=0.0, max_value=1.0)
    intermediate_results = IntermediateResultSerializer(many=True)
    result = serializers.CharField(allow_null=True, help_text="The final answer (Markdown) once completed.")
    error = serializers.CharField(allow_null=True)
    waiting_for = serializers.JSONField(allow_null=True, help_text="The question or pending tool call, or null.")
    provider_error = ProviderErrorField(allow_null=True)
    cost_usd = serializers.FloatField(min_value=0.0, help_text="What the task's model calls cost so far, in USD "
                                      "(steps whose model has a price in the price table).")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    stream_url = serializers.CharField(help_text="Path of the task's Server-Sent Events stream.")
    pause_url = serializers.CharField(allow_null=True, help_text="POST here to pause; null when it does not apply.")
    resume_url = serializers.CharField(allow_null=True, help_text="POST here to resume a paused task (or withdraw "
                                                                  "a pending pause); null otherwise.")
    cancel_url = serializers.CharField(allow_null=True, help_text="POST here to cancel; null once finished.")
    respond_url = serializers.CharField(allow_null=True, help_text="POST the answer here while the task waits "
                                                                   "for a person; null otherwise.")
    retry_url = serializers.CharField(allow_null=True, help_text="POST here to continue a failed task from its "
                                                                 "last good step; null otherwise.")
    forked_from = serializers.JSONField(allow_null=True, help_text='A fork: {"task_id", "step"} of the task and step '
                                                                   "it was forked from; otherwise null.")
    workspace = TaskWorkspaceSerializer(allow_null=True, help_text="The workspace the task belongs to: its id "
                                        "and name.")


class StepSerializer(serializers.Serializer):
    index = serializers.IntegerField(min_value=0)
    kind = serializers.ChoiceField(choices=StepKind.choices)
    agent = serializers.CharField(allow_null=True)
    subtask = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=StepStatus.choices)
    input = serializers.JSONField()
    output = serializers.JSONField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    prompt_version = serializers.CharField(allow_null=True, help_text='"<slug>@<number>" on LLM steps.')
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    duration_ms = serializers.IntegerField()
    provider = serializers.CharField(allow_null=True, help_text="The provider that served a model step.")
    model = serializers.CharField(allow_null=True, help_text="The model that served a model step.")
    tokens_cached = serializers.IntegerField(help_text="Input tokens the provider served from its cache.")
    tokens_estimated = serializers.BooleanField(
        help_text="The token counts are estimates (the provider reported none), and so is the cost.")
    cost_usd = serializers.FloatField(allow_null=True, help_text="The model call's cost in USD, computed when the "
                                      "step was stored; null when not a model step or the model has no price.")
    created_at = serializers.DateTimeField()


class TaskUrlsSerializer(serializers.Serializer):
    self = serializers.URLField()
    steps = serializers.URLField()
    stream = serializers.URLField(help_text="Server-Sent Events.")
    websocket = serializers.CharField(help_text="ws:// or wss:// URL of the live websocket.")


class TaskCreatedSerializer(TaskSerializer):
    urls = TaskUrlsSerializer()


class StepListSerializer(serializers.Serializer):
    task_id = serializers.UUIDField()
    steps = StepSerializer(many=True)
    has_more = serializers.BooleanField(help_text="More steps exist after the last one returned (ask again with "
                                                  "after=<its index>).")


class ExecuteResultSerializer(serializers.Serializer):
    success = serializers.BooleanField(help_text="true when the task completed.")
    task_id = serializers.UUIDField()
    session_id = serializers.UUIDField(help_text="The task id (kept for clients of the original API).")
    status = serializers.ChoiceField(choices=TaskStatus.choices)
    result = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    task = TaskSerializer()
    urls = TaskUrlsSerializer()


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class StreamTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Goes in ?token= of this task's stream and websocket URLs.")
    expires_in = serializers.IntegerField(help_text="Seconds the token stays valid.")
    stream = serializers.URLField(help_text="The Server-Sent Events URL with the token.")
    websocket = serializers.CharField(help_text="The websocket URL with the token.")
