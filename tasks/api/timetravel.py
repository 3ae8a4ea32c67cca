"""REST views of time travel: export a run, import one, fork a task at a step.

Transport only: the document check, the import, and the fork are tasks/timetravel's.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agentos.api import error_responses
from agentos.parsers import JSONParser
from tasks.api.events import task_for
from tasks.api.serializers import TaskCreatedSerializer
from tasks.options import StrictCharField, StrictIntegerField

EXPORT_DESCRIPTION = ("One JSON document: `format` (\"agentos.run\"), `version`, `source`, `task`, `engine`, "
                      "`steps`, `prompts` (the prompt versions the steps used) and `tools` (the tool schemas). "
                      "See docs/time-travel.md.")


class ForkInputSerializer(serializers.Serializer):
    at = StrictIntegerField(min_value=0, help_text="Index of the last step of the original the fork keeps.")
    answer = StrictCharField(required=False, max_length=4000,
                             help_text="Step `at` is a question: answer it (differently) in the fork.")
    output = serializers.JSONField(required=False, help_text="Step `at` is a model step: the corrected model output "
                                                              "(a JSON object) the fork records in its place.")


def _created(request: Request, task) -> Response:
    from tasks.api.views import task_urls
    from tasks.presenters import task_to_dict

    body = {**task_to_dict(task), "urls": task_urls(request, task)}
    return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["urls"]["self"]})


class TaskExportView(APIView):
    @extend_schema(tags=["time travel"], summary="Export a run as one JSON document",
                   description=EXPORT_DESCRIPTION,
                   responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description=EXPORT_DESCRIPTION),
                              **error_responses(401, 404, 429)})
    def get(self, request: Request, task_id: str) -> Response:
        from tasks.timetravel.export import task_export

        task = task_for(request.user, task_id)
        return Response(task_export(task=task),
                        headers={"Content-Disposition": f'attachment; filename="run-{task.pk}.json"'})


class TaskImportView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(tags=["time travel"], summary="Import an exported run as a finished run of yours",
                   description="The body is an export document (GET /api/v1/tasks/{id}/export). Prompt versions "
                               "are matched by content; a missing one is created (never activated) when the "
                               "caller may edit prompts (staff, prompt editors), else the import is a 403 "
                               "naming it. Nothing is run. A document that is not a finished run's "
                               "well-formed export is a 400 naming the field at fault, and nothing is stored.",
                   request=OpenApiTypes.OBJECT,
                   responses={201: TaskCreatedSerializer, **error_responses(400, 401, 403, 413, 415, 429)})
    def post(self, request: Request) -> Response:
        from tasks.timetravel.export import task_import
        from workspaces.access import workspace_for_write

        workspace = workspace_for_write(user=request.user)
        return _created(request, task_import(owner=request.user, document=request.data, workspace=workspace))


class TaskForkView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(tags=["time travel"], summary="Fork a task at a step and run on from there",
                   description="A new task whose log is steps 0..`at` of this one; it runs on under the current "
                               "prompts and tools. With `answer`, step `at` must be a question; with `output`, a "
                               "model step whose output the fork replaces. Operators of the task's workspace may "
                               "fork it; the fork is theirs, in the same workspace.",
                   request=ForkInputSerializer,
                   responses={201: TaskCreatedSerializer, **error_responses(400, 401, 404, 409, 415, 429)})
    def post(self, request: Request, task_id: str) -> Response:
        from tasks.timetravel.fork import UNSET
        from workspaces.task_actions import task_act

        task = task_for(request.user, task_id)
        serializer = ForkInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        fork = task_act(actor=request.user, task=task, action="fork", at=data["at"], answer=data.get("answer"),
                        output=data["output"] if "output" in data else UNSET)
        return _created(request, fork)
