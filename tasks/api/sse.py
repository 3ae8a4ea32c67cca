"""Server-Sent Events: GET /api/v1/tasks/{id}/stream.

An async view (served by daphne) whose response body is an async generator, so a
connection waits on the channel layer without holding a thread. Wire format::

    retry: 2000                        reconnect delay for EventSource

    event: status                      the task as it is now (no id: it is not a step)
    data: {"type": "status", "seq": 4, "task": {...}, "step": null}

    id: 5                              the step index; a reconnecting client sends it back
    event: step                        as Last-Event-ID and gets only later steps
    data: {"type": "step", "seq": 5, "task": {...}, "step": {...}}

    : heartbeat                        a comment every SSE_HEARTBEAT_SECONDS

    event: end                         the task finished; the server closes the stream
    data: {"type": "end", "task": {...}}

    event: error                       the caller may no longer follow the task (API key
    data: {"type": "error", "error": {...}}   revoked, user deactivated: code
                                       "not_authenticated"; removed from the workspace:
                                       "not_found"); the server closes the stream

The caller is re-checked before an event is sent, at most every LIVE_ACCESS_RECHECK_SECONDS.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.views import APIView

from agentos.api import ApplicationError, error_body
from agentos.middleware import outage_errors, unavailable_response
from tasks.api.auth import AccessCheck, request_credential, request_user
from tasks.api.events import StepSequencer, TaskSubscription, in_db_thread, parse_after, read_snapshot, task_for
from tasks.api.views import error_responses


def format_event(data: dict, *, event: str | None = None, event_id: int | None = None) -> str:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event:
        lines.append(f"event: {event}")
    # JSON never contains a raw newline, so one data line carries the whole payload.
    lines.append("data: " + json.dumps(data, separators=(",", ":"), default=str))
    return "\n".join(lines) + "\n\n"


def _as_sse(event: dict) -> str:
    if event["type"] == "step":
        return format_event(event, event="step", event_id=event["seq"])
    return format_event(event, event=event["type"])


def _end(sequencer: StepSequencer) -> str:
    return format_event({"type": "end", "task": sequencer.task_dict}, event="end")


ACCESS_ERRORS = {"unauthenticated": ("not_authenticated", "The credentials this stream was opened with are no longer "
                                                         "valid."),
                 "not_found": ("not_found", "This task is no longer visible to you.")}


def _access_error(reason: str) -> str:
    code, message = ACCESS_ERRORS[reason]
    return format_event({"type": "error", **error_body(code, message)}, event="error")


async def event_stream(task, after: int | None, access: AccessCheck) -> AsyncIterator[str]:
    """Replay the steps after ``after``, then live events until the task finishes (or
    ``access`` finds that the caller may no longer follow it)."""
    heartbeat = settings.SSE_HEARTBEAT_SECONDS
    # Subscribe before reading the snapshot: a step committed in between then arrives twice
    # (the sequencer drops the copy) instead of never.
    async with TaskSubscription(task.pk) as subscription:
        snapshot = await in_db_thread(read_snapshot)(task, after)
        sequencer = StepSequencer(task, after)
        steps = sequencer.take_snapshot(snapshot)
        yield "retry: 2000\n\n"
        yield format_event({"type": "status", "seq": sequencer.last_index, "task": snapshot.task, "step": None},
                           event="status")
        for step in steps:
            yield format_event({"type": "step", "seq": step["index"], "task": snapshot.task, "step": step},
                               event="step", event_id=step["index"])
        while not sequencer.finished:
            event = await subscription.next(timeout=heartbeat)
            if event is None:
                yield ": heartbeat\n\n"
                # One cheap read per heartbeat, in case a publish was lost while idle.
                events = sequencer.reconcile(await in_db_thread(read_snapshot)(task, sequencer.last_index))
            else:
                events = await sequencer.admit(event)
            lost = await access.lost() if events else None
            if lost is not None:
                yield _access_error(lost)
                return
            for item in events:
                yield _as_sse(item)
        yield _end(sequencer)


class PrimedStream:
    """An event stream whose first part was produced before the response was returned.

    Producing it subscribes to the channel layer and reads the snapshot, so an outage of
    Redis or PostgreSQL is a 503 in the error shape instead of a 200 that breaks off.
    Django calls ``close()`` (in a worker thread) when the response ends, also when it was
    never iterated; closing the generator then leaves the channel layer group.
    """

    def __init__(self, first: str, stream: AsyncIterator[str]) -> None:
        self.first: str | None = first
        self.stream = stream

    def __aiter__(self) -> PrimedStream:
        return self

    async def __anext__(self) -> str:
        if self.first is not None:
            first, self.first = self.first, None
            return first
        return await self.stream.__anext__()

    async def aclose(self) -> None:
        await self.stream.aclose()

    def close(self) -> None:
        from asgiref.sync import async_to_sync

        async_to_sync(self.aclose)()


def _error(status: int, code: str, message: str, field: str | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, field), status=status)


@csrf_exempt
async def task_stream(request: HttpRequest, task_id: str) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        response = _error(405, "method_not_allowed", f'Method "{request.method}" not allowed.')
        response["Allow"] = "GET, HEAD"
        return response
    user = await request_user(request, task_id)
    if not user.is_authenticated:
        return _error(401, "not_authenticated", "Authentication credentials were not provided or are invalid.")
    try:
        task = await in_db_thread(task_for)(user, task_id)
        # Last-Event-ID (sent by a reconnecting EventSource) wins over ?after=.
        header = request.headers.get("Last-Event-ID")
        after = parse_after(header, "Last-Event-ID") if header else parse_after(request.GET.get("after"))
    except ApplicationError as exc:
        return _error(exc.status_code, exc.code, exc.message, exc.field)
    stream = event_stream(task, after, AccessCheck(user, request_credential(request), task.pk))
    try:
        first = await stream.__anext__()
    except outage_errors():
        await stream.aclose()
        return unavailable_response(request)
    response = StreamingHttpResponse(PrimedStream(first, stream), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # proxies such as nginx must not buffer the stream
    return response


class TaskStreamDoc(APIView):
    """Documents the SSE endpoint in the OpenAPI schema; the async view above serves it."""

    @extend_schema(
        tags=["tasks"],
        summary="Follow a task live (Server-Sent Events)",
        description="Replays the steps after `Last-Event-ID` (or `?after=N`), then sends each step and status "
                    "change as it commits: `event: step` (with `id:` = step index), `event: status`, "
                    "`: heartbeat` comments, and a final `event: end` when the task finishes. Authenticate "
                    "with the session, `Authorization: Token <key>`, or `?token=` with a stream token from "
                    "`POST /api/v1/tasks/{id}/stream-token` (or the API key).",
        parameters=[
            OpenApiParameter("after", OpenApiTypes.INT, description="Only steps with a larger index."),
            OpenApiParameter("token", OpenApiTypes.STR, description="A stream token for this task, or the API "
                                                                     "token (for clients that cannot send headers)."),
            OpenApiParameter("Last-Event-ID", OpenApiTypes.INT, OpenApiParameter.HEADER,
                             description="The last step index received; wins over `after`."),
        ],
        # Each event's `data` is a JSON object ({"type": "step"|"status"|"end", "seq", "task", "step"}),
        # interleaved with heartbeat comments: no single schema covers the stream, so it is left open.
        responses={(200, "text/event-stream"): OpenApiTypes.ANY, **error_responses(400, 401, 404)},
    )
    def get(self, request, task_id: str) -> None:  # pragma: no cover - never routed
        raise NotImplementedError


task_stream.cls = TaskStreamDoc
task_stream.initkwargs = {}
