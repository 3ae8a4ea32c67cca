"""REST views of tasks: list and create, detail, step log, control, and API tokens.

Views are transport: they validate input with a serializer, look the task up through the
selectors (another user's task is a 404, staff see all), call one service, and answer
with the presenters' dicts.
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.authtoken.models import Token
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from agentos.api import ApplicationError
from agentos.parsers import JSONParser
from tasks.api import serializers as s
from tasks.api.events import parse_after, task_for
from tasks.models import TaskStatus

STEPS_PAGE_MAX = 1000


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {
        400: "Invalid input; `field` names the offending field.",
        401: "Not authenticated.",
        403: "Your role in the task's workspace does not allow this (viewers may only read).",
        404: "No such task, or one outside your workspaces.",
        409: "The task's state does not allow this action.",
        415: "The body is not application/json.",
        429: "Too many requests.",
    }
    return {code: OpenApiResponse(s.ErrorSerializer, description=descriptions[code]) for code in codes}


def task_urls(request: Request, task) -> dict[str, str]:
    """Where to follow a task: REST, steps, Server-Sent Events and the websocket."""
    self_url = request.build_absolute_uri(reverse("task-detail", kwargs={"task_id": task.pk}))
    websocket = request.build_absolute_uri(f"/ws/tasks/{task.pk}/")
    return {
        "self": self_url,
        "steps": request.build_absolute_uri(reverse("task-steps", kwargs={"task_id": task.pk})),
        "stream": request.build_absolute_uri(reverse("task-stream", kwargs={"task_id": task.pk})),
        "websocket": "ws" + websocket.removeprefix("http"),
    }


def create_task(request: Request, data: dict):
    """The one way the API starts a task (POST /tasks/ and POST /execute)."""
    from workspaces.task_actions import task_create_as

    return task_create_as(actor=request.user, workspace_id=data.get("workspace"), query=data["query"],
                          trigger="api", trigger_details={"endpoint": request.path},
                          options=data.get("options") or None, callback_url=data.get("callback_url") or None)


def parse_status(value: str | None) -> str | None:
    if not value:
        return None
    if value not in TaskStatus.values:
        raise ApplicationError(f"Unknown status {value!r}; choose from {', '.join(TaskStatus.values)}.",
                               field="status", code="invalid_choice")
    return value


class TaskListCreateView(generics.GenericAPIView):
    parser_classes = [JSONParser]
    serializer_class = s.TaskSerializer

    @extend_schema(
        tags=["tasks"],
        summary="List the tasks you can see (newest first)",
        parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=TaskStatus.values,
                                     description="Only tasks in this status.")],
        responses={200: s.TaskSerializer(many=True), **error_responses(400, 401, 429)},
    )
    def get(self, request: Request) -> Response:
        from tasks.presenters import task_to_dict
        from tasks.selectors import tasks_for_user

        tasks = tasks_for_user(user=request.user, status=parse_status(request.query_params.get("status")))
        page = self.paginate_queryset(tasks)
        return self.get_paginated_response([task_to_dict(task) for task in page])

    @extend_schema(
        tags=["tasks"],
        summary="Create a task (it starts at once)",
        request=s.TaskCreateInputSerializer,
        responses={201: s.TaskCreatedSerializer, **error_responses(400, 401, 415, 429)},
    )
    def post(self, request: Request) -> Response:
        from tasks.presenters import task_to_dict

        serializer = s.TaskCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task = create_task(request, serializer.validated_data)
        body = {**task_to_dict(task), "urls": task_urls(request, task)}
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["urls"]["self"]})


class TaskDetailView(APIView):
    @extend_schema(tags=["tasks"], summary="A task: status, progress, intermediate results, result",
                   responses={200: s.TaskSerializer, **error_responses(401, 404, 429)})
    def get(self, request: Request, task_id: str) -> Response:
        from tasks.presenters import task_to_dict

        return Response(task_to_dict(task_for(request.user, task_id)))


class TaskStepsView(APIView):
    @extend_schema(
        tags=["tasks"],
        summary="The step log of a task",
        parameters=[
            OpenApiParameter("after", OpenApiTypes.INT, description="Only steps with a larger index."),
            OpenApiParameter("limit", OpenApiTypes.INT, description=f"At most this many (1-{STEPS_PAGE_MAX})."),
        ],
        responses={200: s.StepListSerializer, **error_responses(400, 401, 404, 429)},
    )
    def get(self, request: Request, task_id: str) -> Response:
        from tasks.presenters import step_to_dict
        from tasks.selectors import steps_after

        task = task_for(request.user, task_id)
        after = parse_after(request.query_params.get("after"))
        limit = self._limit(request.query_params.get("limit"))
        steps = list(steps_after(task=task, after=after)[: limit + 1])
        return Response({"task_id": str(task.pk), "steps": [step_to_dict(step) for step in steps[:limit]],
                         "has_more": len(steps) > limit})

    @staticmethod
    def _limit(value: str | None) -> int:
        if not value:
            return STEPS_PAGE_MAX
        try:
            limit = int(value)
        except ValueError:
            limit = 0
        if not 1 <= limit <= STEPS_PAGE_MAX:
            raise ApplicationError(f"limit must be an integer from 1 to {STEPS_PAGE_MAX}.", field="limit")
        return limit


class TaskActionView(APIView):
    """POST /tasks/{id}/<action>: one service call; 409 when the task's state forbids it."""

    parser_classes = [JSONParser]
    action = ""

    def perform(self, request: Request, task) -> None:
        from workspaces.task_actions import task_act

        task_act(actor=request.user, task=task, action=self.action)

    def post(self, request: Request, task_id: str) -> Response:
        from tasks.presenters import task_to_dict

        task = task_for(request.user, task_id)
        self.perform(request, task)
        task.refresh_from_db()
        return Response(task_to_dict(task))


_ACTION_RESPONSES = {200: s.TaskSerializer, **error_responses(401, 403, 404, 409, 429)}


class TaskPauseView(TaskActionView):
    action = "pause"

    @extend_schema(tags=["tasks"], summary="Pause a task (after the step in progress commits)", request=None,
                   responses=_ACTION_RESPONSES)
    def post(self, request: Request, task_id: str) -> Response:
        return super().post(request, task_id)


class TaskResumeView(TaskActionView):
    action = "resume"

    @extend_schema(tags=["tasks"], summary="Resume a paused task", request=None, responses=_ACTION_RESPONSES)
    def post(self, request: Request, task_id: str) -> Response:
        return super().post(request, task_id)


class TaskCancelView(TaskActionView):
    action = "cancel"

    @extend_schema(tags=["tasks"], summary="Cancel a task", request=None, responses=_ACTION_RESPONSES)
    def post(self, request: Request, task_id: str) -> Response:
        return super().post(request, task_id)


class TaskRetryView(TaskActionView):
    action = "retry"

    @extend_schema(tags=["tasks"], summary="Retry a failed task from its last good step",
                   description="Committed steps are kept; a `retry` step is appended and what failed (the plan, "
                               "a subtask or the synthesis) runs again. 409 `not_failed` unless the task failed.",
                   request=None, responses=_ACTION_RESPONSES)
    def post(self, request: Request, task_id: str) -> Response:
        return super().post(request, task_id)


class TaskRespondView(TaskActionView):
    action = "respond"

    def perform(self, request: Request, task) -> None:
        from workspaces.task_actions import task_act

        serializer = s.RespondInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task_act(actor=request.user, task=task, action="respond", **serializer.validated_data)

    @extend_schema(tags=["tasks"], summary="Answer a task waiting for a person (a question or an approval)",
                   request=s.RespondInputSerializer,
                   responses={**_ACTION_RESPONSES, **error_responses(400, 415)})
    def post(self, request: Request, task_id: str) -> Response:
        return super().post(request, task_id)


class TaskStreamTokenView(APIView):
    """A short-lived token for this task's event stream and websocket (tasks/api/stream_tokens.py)."""

    @extend_schema(tags=["tasks"], summary="Get a short-lived token for following this task",
                   description="Put it in `?token=` of the task's event stream or websocket URL instead of "
                               "your API key: it opens only this task's streams and expires after "
                               "`expires_in` seconds.",
                   request=None, responses={200: s.StreamTokenSerializer, **error_responses(401, 404, 429)})
    def post(self, request: Request, task_id: str) -> Response:
        from django.conf import settings

        from tasks.api.stream_tokens import stream_token_create

        task = task_for(request.user, task_id)
        token = stream_token_create(user=request.user, task=task)
        urls = task_urls(request, task)
        query = f"?token={token}"
        return Response({"token": token, "expires_in": settings.STREAM_TOKEN_SECONDS,
                         "stream": urls["stream"] + query, "websocket": urls["websocket"] + query})


class TokenCreateView(APIView):
    """Exchange a username and password for the user's API token (created on first use)."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    parser_classes = [JSONParser]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(tags=["tasks"], summary="Get your API token", request=s.TokenInputSerializer,
                   responses={200: s.TokenSerializer, **error_responses(400, 415, 429)}, auth=[])
    def post(self, request: Request) -> Response:
        serializer = s.TokenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(request._request, username=serializer.validated_data["username"],
                            password=serializer.validated_data["password"])
        if user is None or not user.is_active:
            raise ApplicationError("Wrong username or password.", code="invalid_credentials")
        from django.db import transaction

        from workspaces.services import api_key_rotated

        with transaction.atomic():
            token, created = Token.objects.get_or_create(user=user)
            if created:
                api_key_rotated(user=user, created=True)
        return Response({"token": token.key})

