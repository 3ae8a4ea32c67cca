"""REST API of a workspace's webhooks and schedules, under /api/v1/workspaces/{id}/ (routes in
workspaces/api_urls.py). Operators and above list and read them (never a secret); admins
create, change, disable and delete them (triggers.editing, one audit row each; reads in triggers.selectors)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agentos.api import error_responses
from agentos.logfilters import redact
from triggers import editing, selectors
from triggers.models import ScheduledQuery, Webhook
from triggers.schedules import INTERVAL_MAX_MINUTES, describe
from workspaces.access import role_of
from workspaces.models import Role
from workspaces.selectors import workspace_get_for_user

TAGS = ["workspaces"]
READ_ERRORS = error_responses(401, 403, 404, 429)
WRITE_ERRORS = error_responses(400, 401, 403, 404, 415, 429)


class WebhookInput(serializers.Serializer):
    """The body of a webhook's creation (``name`` required) or change (any subset)."""

    name = serializers.CharField(max_length=editing.NAME_MAX)
    enabled = serializers.BooleanField(required=False, help_text="false: deliveries get 404.")
    query_template = serializers.CharField(required=False, allow_blank=True,
                                           help_text="Jinja2 (sandboxed) over the payload's keys and `payload`.")
    options = serializers.JSONField(required=False, help_text="Agent options of the tasks it starts.")
    callback_url = serializers.CharField(required=False, allow_blank=True, max_length=editing.URL_MAX)


class ScheduleInput(serializers.Serializer):
    """The body of a schedule's creation (``name``, ``query`` and one of ``interval_minutes`` /
    ``crontab`` required) or change (any subset; the timing is replaced when either is given)."""

    name = serializers.CharField(max_length=editing.NAME_MAX)
    query = serializers.CharField()
    enabled = serializers.BooleanField(required=False, help_text="false: beat stops running it.")
    interval_minutes = serializers.IntegerField(required=False, allow_null=True, min_value=1,
                                                max_value=INTERVAL_MAX_MINUTES)
    crontab = serializers.CharField(required=False, allow_null=True, max_length=editing.CRONTAB_MAX,
                                    help_text='Five fields, UTC, e.g. "0 8 * * mon-fri".')
    options = serializers.JSONField(required=False)
    callback_url = serializers.CharField(required=False, allow_blank=True, max_length=editing.URL_MAX)


def _sees_secrets_of_urls(request: Request, workspace) -> bool:
    """Admins see callback URLs as stored; others without credentials in query strings."""
    return role_of(request.user, workspace.pk) == Role.ADMIN


def webhook_to_dict(webhook: Webhook, request: Request, *, full: bool, secret: bool = False) -> dict:
    body = {"id": str(webhook.pk), "name": webhook.name, "enabled": webhook.enabled,
            "owner": webhook.owner.get_username(), "workspace": webhook.workspace_id,
            "url": request.build_absolute_uri(f"/hooks/{webhook.pk}/"),
            "query_template": webhook.query_template, "options": webhook.options,
            "callback_url": webhook.callback_url if full else redact(webhook.callback_url),
            "created_at": webhook.created_at, "updated_at": webhook.updated_at}
    if secret:
        body["secret"] = webhook.secret
    return body


def schedule_to_dict(schedule: ScheduledQuery, *, full: bool) -> dict:
    return {"id": schedule.pk, "name": schedule.name, "enabled": schedule.enabled,
            "owner": schedule.owner.get_username(), "workspace": schedule.workspace_id,
            "query": schedule.query, "options": schedule.options,
            "callback_url": schedule.callback_url if full else redact(schedule.callback_url),
            **selectors.schedule_timing(schedule), "schedule": describe(schedule),
            "last_run_at": schedule.last_run_at, "last_task_id": schedule.last_task_id,
            "last_error": schedule.last_error or None, "last_error_at": schedule.last_error_at,
            "created_at": schedule.created_at, "updated_at": schedule.updated_at}


class WebhooksView(APIView):
    @extend_schema(tags=TAGS, summary="The workspace's webhooks (operators and above; no secrets)",
                   operation_id="v1_workspaces_webhooks_list",
                   responses={200: OpenApiTypes.OBJECT, **READ_ERRORS})
    def get(self, request: Request, workspace_id: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
        webhooks = selectors.webhooks_of(user=request.user, workspace=workspace)
        full = _sees_secrets_of_urls(request, workspace)
        return Response({"webhooks": [webhook_to_dict(webhook, request, full=full) for webhook in webhooks]})

    @extend_schema(tags=TAGS, summary="Create a webhook (admins); the answer holds its secret, once",
                   description="Its tasks run as the caller, in this workspace. Sign deliveries with `secret` "
                               "([triggers](triggers.md#inbound-webhooks)); it is never shown again.",
                   request=WebhookInput, responses={201: OpenApiTypes.OBJECT, **WRITE_ERRORS})
    def post(self, request: Request, workspace_id: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
        webhook = editing.webhook_create(actor=request.user, workspace=workspace, data=request.data)
        return Response(webhook_to_dict(webhook, request, full=True, secret=True), status=201)


class WebhookView(APIView):
    @extend_schema(tags=TAGS, summary="One webhook of the workspace (operators and above; no secret)",
                   responses={200: OpenApiTypes.OBJECT, **READ_ERRORS})
    def get(self, request: Request, workspace_id: str, webhook_id: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
        webhook = selectors.webhook_get(user=request.user, workspace=workspace, webhook_id=webhook_id)
        return Response(webhook_to_dict(webhook, request, full=_sees_secrets_of_urls(request, workspace)))

    @extend_schema(tags=TAGS, summary="Change a webhook (admins); `enabled: false` disables it",
                   request=WebhookInput, responses={200: OpenApiTypes.OBJECT, **WRITE_ERRORS})
    def patch(self, request: Request, workspace_id: str, webhook_id: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
        webhook = editing.webhook_update(actor=request.user, workspace=workspace, webhook_id=webhook_id,
                                         data=request.data)
        return Response(webhook_to_dict(webhook, request, full=True))

    @extend_schema(tags=TAGS, summary="Delete a webhook (admins)", request=None,
                   responses={204: None, **READ_ERRORS})
    def delete(self, request: Request, workspace_id: str, webhook_id: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
        editing.webhook_delete(actor=request.user, workspace=workspace, webhook_id=webhook_id)
        return Response(status=204)


class WebhookRotateView(APIView):
    @extend_schema(tags=TAGS, summary="Replace a webhook's secret (admins); the answer holds it, once",
                   request=None, responses={200: OpenApiTypes.OBJECT, **READ_ERRORS})
    def post(self, request: Request, workspace_id: str, webhook_id: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
        webhook = editing.webhook_secret_rotate(actor=request.user, workspace=workspace, webhook_id=webhook_id)
        return Response(webhook_to_dict(webhook, request, full=True, secret=True))


class SchedulesView(APIView):
    @extend_schema(tags=TAGS, summary="The workspace's schedules (operators and above)",
                   operation_id="v1_workspaces_schedules_list",
                   responses={200: OpenApiTypes.OBJECT, **READ_ERRORS})
    def get(self, request: Request, workspace_id: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
        schedules = selectors.schedules_of(user=request.user, workspace=workspace)
        full = _sees_secrets_of_urls(request, workspace)
        return Response({"schedules": [schedule_to_dict(schedule, full=full) for schedule in schedules]})

    @extend_schema(tags=TAGS, summary="Create a schedule (admins)",
                   description="Its runs are tasks of the caller, in this workspace. Give `interval_minutes` "
                               "or `crontab` (UTC), not both.",
                   request=ScheduleInput, responses={201: OpenApiTypes.OBJECT, **WRITE_ERRORS})
    def post(self, request: Request, workspace_id: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
        schedule = editing.schedule_create(actor=request.user, workspace=workspace, data=request.data)
        return Response(schedule_to_dict(schedule, full=True), status=201)


class ScheduleView(APIView):
    @extend_schema(tags=TAGS, summary="One schedule of the workspace (operators and above)",
                   responses={200: OpenApiTypes.OBJECT, **READ_ERRORS})
    def get(self, request: Request, workspace_id: str, schedule_id: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
        schedule = selectors.schedule_get(user=request.user, workspace=workspace, schedule_id=schedule_id)
        return Response(schedule_to_dict(schedule, full=_sees_secrets_of_urls(request, workspace)))

    @extend_schema(tags=TAGS, summary="Change a schedule (admins); `enabled: false` pauses it",
                   request=ScheduleInput, responses={200: OpenApiTypes.OBJECT, **WRITE_ERRORS})
    def patch(self, request: Request, workspace_id: str, schedule_id: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
        schedule = editing.schedule_update(actor=request.user, workspace=workspace, schedule_id=schedule_id,
                                           data=request.data)
        return Response(schedule_to_dict(schedule, full=True))

    @extend_schema(tags=TAGS, summary="Delete a schedule and its beat entry (admins)", request=None,
                   responses={204: None, **READ_ERRORS})
    def delete(self, request: Request, workspace_id: str, schedule_id: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
        editing.schedule_delete(actor=request.user, workspace=workspace, schedule_id=schedule_id)
        return Response(status=204)
