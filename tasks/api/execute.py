"""POST /api/v1/execute: the original entry point, kept compatible.

``{"query", "timeout"?, "wait"?}`` creates a task, waits for it to finish (at most
``timeout`` seconds) and answers ``{"success", "task_id", "session_id", "result",
"status", ...}``. ``"wait": false`` answers 202 at once with the task's URLs.

The view is async so a waiting request holds no thread: DRF (authentication, CSRF,
throttling, parsing, validation and creation) runs in a worker thread for a moment, then
the wait is an ``await`` on the channel layer group ``task-<id>``.
"""

from __future__ import annotations

import asyncio

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agentos.parsers import JSONParser
from tasks.api import serializers as s
from tasks.api.events import FINISHED, TaskSubscription, in_db_thread
from tasks.api.views import create_task, error_responses, task_urls

# A task in these states needs a person (or a resume) before it can finish: stop waiting.
STOP_WAITING = FINISHED | {"waiting_human", "paused"}
# Re-read the task this often while waiting, in case a publish was lost.
RECHECK_SECONDS = 5.0


def result_body(task_dict: dict, urls: dict) -> dict:
    return {
        "success": task_dict["status"] == "completed",
        "task_id": task_dict["task_id"],
        "session_id": task_dict["task_id"],
        "status": task_dict["status"],
        "result": task_dict.get("result"),
        "error": task_dict.get("error"),
        "task": task_dict,
        "urls": urls,
    }


class ExecuteView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        tags=["tasks"],
        summary="Run a query and wait for its result (the original API)",
        description="Waits up to `timeout` seconds. 200 when the task finished or stopped for a person "
                    "(`success` is true only for `completed`); 202 when the wait ended first, or at once "
                    'with `"wait": false`; follow the task through `urls`.',
        request=s.ExecuteInputSerializer,
        responses={200: s.ExecuteResultSerializer, 202: s.ExecuteResultSerializer,
                   **error_responses(400, 401, 415, 429)},
    )
    def post(self, request: Request) -> Response:
        from tasks.presenters import task_to_dict

        serializer = s.ExecuteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        task = create_task(request, data)
        body = result_body(task_to_dict(task), task_urls(request, task))
        if data["wait"]:
            # The async wrapper below does the waiting, outside this thread.
            timeout = data.get("timeout", settings.EXECUTE_DEFAULT_TIMEOUT)
            request._request.execute_wait = (task, timeout)
        return Response(body, status=status.HTTP_202_ACCEPTED)


def _read_task(task) -> dict:
    from tasks.presenters import task_to_dict

    task.refresh_from_db()
    return task_to_dict(task)


async def wait_for_task(task, timeout: float) -> dict:
    """The task's dict once it finishes or stops for a person, or when ``timeout`` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # Subscribe first, then read: a change committed in between is seen by one or the other.
    async with TaskSubscription(task.pk) as subscription:
        task_dict = await in_db_thread(_read_task)(task)
        while task_dict["status"] not in STOP_WAITING:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            event = await subscription.next(timeout=min(remaining, RECHECK_SECONDS))
            if event is not None and (event.get("task") or {}).get("status") not in STOP_WAITING:
                continue
            task_dict = await in_db_thread(_read_task)(task)
    return task_dict


_drf_execute = ExecuteView.as_view()


def _drf_execute_and_release(request: HttpRequest) -> HttpResponse:
    """The DRF view, then this thread's database connection given back (to the pool, with
    DB_POOL_MAX_SIZE) before the wait: a request that waits for its task holds none, so
    sixty waiting requests do not exhaust the pool the rest of the site needs."""
    from django.db import connections

    try:
        return _drf_execute(request)
    finally:
        for connection in connections.all(initialized_only=True):
            if not connection.in_atomic_block:  # an enclosing transaction keeps its connection
                connection.close()


@csrf_exempt  # DRF's SessionAuthentication enforces CSRF for cookie-authenticated requests
async def execute(request: HttpRequest) -> HttpResponse:
    response = await sync_to_async(_drf_execute_and_release)(request)
    pending = getattr(request, "execute_wait", None)
    if pending is None or response.status_code != status.HTTP_202_ACCEPTED:
        return response
    task, timeout = pending
    task_dict = await wait_for_task(task, timeout)
    # The response is not rendered yet (Django renders it after the view returns), so its
    # negotiated renderer and headers stay; only the body and the status change.
    response.data = result_body(task_dict, response.data["urls"])
    if task_dict["status"] in STOP_WAITING:
        response.status_code = status.HTTP_200_OK
    return response


# drf-spectacular documents DRF views by their class; the async wrapper stands in for it.
execute.cls = ExecuteView
execute.initkwargs = {}
