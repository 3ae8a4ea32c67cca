"""REST views of datasets, eval runs and feedback on tasks.

Transport only: validate with an input serializer, look objects up through the selectors
(an object outside your workspaces is a 404, one your role may see but not change a 403;
staff see all), call one service, answer with an output serializer. Errors use the one
shape of agentos.api.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agentos.api import ApplicationError, NotFound, error_responses
from evals import serializers as s
from evals import services
from evals.models import TaskFeedback
from evals.selectors import (
    compare_runs,
    dataset_get_for_run,
    dataset_get_for_user,
    dataset_item_get,
    datasets_for_user,
    eval_run_get_for_user,
    eval_runs_for_user,
    run_results,
)
from prompts.models import PromptTemplate, PromptVersion

TAGS = ["evals"]


def _template(slug: str | None) -> PromptTemplate | None:
    if not slug:
        return None
    template = PromptTemplate.objects.filter(slug=slug).first()
    if template is None:
        raise ApplicationError(f"no prompt template {slug!r}", field="template", code="not_found")
    return template


class DatasetListView(generics.GenericAPIView):
    serializer_class = s.DatasetSerializer

    @extend_schema(tags=TAGS, summary="Your datasets and the shipped ones",
                   responses={200: s.DatasetSerializer(many=True), **error_responses(401, 429)})
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(datasets_for_user(user=request.user))
        return self.get_paginated_response(s.DatasetSerializer(page, many=True).data)

    @extend_schema(tags=TAGS, summary="Create a dataset (prompt editors of the workspace)",
                   request=s.DatasetCreateSerializer,
                   responses={201: s.DatasetDetailSerializer, **error_responses(400, 401, 403, 404, 409, 415, 429)})
    def post(self, request: Request) -> Response:
        from workspaces.access import workspace_for_write
        from workspaces.models import Role

        data = s.DatasetCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        workspace = workspace_for_write(user=request.user, workspace_id=data.validated_data.get("workspace"),
                                        at_least=Role.PROMPT_EDITOR)
        dataset = services.dataset_create(owner=request.user, workspace=workspace, name=data.validated_data["name"],
                                          description=data.validated_data.get("description", ""),
                                          template=_template(data.validated_data.get("template")))
        return Response(s.DatasetDetailSerializer(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailView(APIView):
    @extend_schema(tags=TAGS, summary="A dataset with its items",
                   responses={200: s.DatasetDetailSerializer, **error_responses(401, 404, 429)})
    def get(self, request: Request, dataset_id: str) -> Response:
        return Response(s.DatasetDetailSerializer(dataset_get_for_user(user=request.user, dataset_id=dataset_id)).data)

    @extend_schema(tags=TAGS, summary="Rename or describe a dataset", request=s.DatasetInputSerializer(partial=True),
                   responses={200: s.DatasetDetailSerializer, **error_responses(400, 401, 404, 409, 415, 429)})
    def patch(self, request: Request, dataset_id: str) -> Response:
        dataset = dataset_get_for_user(user=request.user, dataset_id=dataset_id, write=True)
        data = s.DatasetInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if "template" in changes:
            changes["template"] = _template(changes["template"])
        dataset = services.dataset_update(dataset=dataset, **changes)
        return Response(s.DatasetDetailSerializer(dataset).data)

    @extend_schema(tags=TAGS, summary="Delete a dataset, its items and their eval results",
                   responses={204: None, **error_responses(401, 404, 429)})
    def delete(self, request: Request, dataset_id: str) -> Response:
        services.dataset_delete(dataset=dataset_get_for_user(user=request.user, dataset_id=dataset_id, write=True))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DatasetItemListView(APIView):
    @extend_schema(tags=TAGS, summary="Add an item (a query and/or template variables, with checks)",
                   request=s.DatasetItemInputSerializer,
                   responses={201: s.DatasetItemSerializer, **error_responses(400, 401, 404, 415, 429)})
    def post(self, request: Request, dataset_id: str) -> Response:
        dataset = dataset_get_for_user(user=request.user, dataset_id=dataset_id, write=True)
        data = s.DatasetItemInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = services.dataset_item_create(dataset=dataset, **data.validated_data)
        return Response(s.DatasetItemSerializer(item).data, status=status.HTTP_201_CREATED)


class DatasetItemDetailView(APIView):
    def _item(self, request: Request, dataset_id: str, item_id: str):
        dataset = dataset_get_for_user(user=request.user, dataset_id=dataset_id, write=True)
        return dataset_item_get(dataset=dataset, item_id=item_id)

    @extend_schema(tags=TAGS, summary="Change an item", request=s.DatasetItemInputSerializer(partial=True),
                   responses={200: s.DatasetItemSerializer, **error_responses(400, 401, 404, 415, 429)})
    def patch(self, request: Request, dataset_id: str, item_id: str) -> Response:
        item = self._item(request, dataset_id, item_id)
        data = s.DatasetItemInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(s.DatasetItemSerializer(services.dataset_item_update(item=item, **data.validated_data)).data)

    @extend_schema(tags=TAGS, summary="Delete an item", responses={204: None, **error_responses(401, 404, 429)})
    def delete(self, request: Request, dataset_id: str, item_id: str) -> Response:
        services.dataset_item_delete(item=self._item(request, dataset_id, item_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class EvalRunListView(generics.GenericAPIView):
    serializer_class = s.EvalRunSerializer

    @extend_schema(tags=TAGS, summary="Your eval runs (newest first)",
                   responses={200: s.EvalRunSerializer(many=True), **error_responses(401, 429)})
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(eval_runs_for_user(user=request.user))
        return self.get_paginated_response(s.EvalRunSerializer(page, many=True).data)

    @extend_schema(tags=TAGS, summary="Run a prompt version over a dataset (Celery jobs; poll the run)",
                   request=s.EvalRunInputSerializer,
                   responses={201: s.EvalRunSerializer, **error_responses(400, 401, 403, 404, 415, 429)})
    def post(self, request: Request) -> Response:
        data = s.EvalRunInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        dataset = dataset_get_for_run(user=request.user, dataset_id=values["dataset"])
        version = PromptVersion.objects.select_related("template").filter(
            template__slug=values["prompt"], number=values["version"]).first()
        if version is None:
            raise NotFound(f"prompt {values['prompt']} has no version {values['version']}", field="version")
        run = services.eval_run_create(owner=request.user, dataset=dataset, version=version,
                                       concurrency=values.get("concurrency"))
        return Response(s.EvalRunSerializer(run).data, status=status.HTTP_201_CREATED)


class EvalRunDetailView(APIView):
    @extend_schema(tags=TAGS, summary="An eval run: status, progress, pass rate, tokens, latency",
                   responses={200: s.EvalRunSerializer, **error_responses(401, 404, 429)})
    def get(self, request: Request, run_id: str) -> Response:
        return Response(s.EvalRunSerializer(eval_run_get_for_user(user=request.user, run_id=run_id)).data)


class EvalRunResultsView(APIView):
    @extend_schema(tags=TAGS, summary="Per-item results of an eval run: output, verdicts, tokens, latency",
                   responses={200: s.EvalResultSerializer(many=True), **error_responses(401, 404, 429)})
    def get(self, request: Request, run_id: str) -> Response:
        run = eval_run_get_for_user(user=request.user, run_id=run_id)
        return Response(s.EvalResultSerializer(run_results(run=run), many=True).data)


class EvalCompareView(APIView):
    @extend_schema(tags=TAGS, summary="Two eval runs side by side, items whose verdict differs first",
                   parameters=[OpenApiParameter("a", OpenApiTypes.INT, required=True, description="Run id."),
                               OpenApiParameter("b", OpenApiTypes.INT, required=True, description="Run id.")],
                   responses={200: s.CompareSerializer, **error_responses(401, 404, 429)})
    def get(self, request: Request) -> Response:
        a = eval_run_get_for_user(user=request.user, run_id=request.query_params.get("a"))
        b = eval_run_get_for_user(user=request.user, run_id=request.query_params.get("b"))
        return Response(s.CompareSerializer({"a": a, "b": b, "items": compare_runs(a=a, b=b)}).data)


def _task(request: Request, task_id: str):
    from tasks.selectors import task_get_for_user

    return task_get_for_user(user=request.user, task_id=task_id)


class TaskFeedbackView(APIView):
    @extend_schema(tags=TAGS, summary="Your feedback on a task",
                   responses={200: s.FeedbackSerializer, **error_responses(401, 404, 429)})
    def get(self, request: Request, task_id: str) -> Response:
        feedback = TaskFeedback.objects.filter(task=_task(request, task_id), user=request.user).first()
        if feedback is None:
            raise NotFound("no feedback from you on this task")
        return Response(s.FeedbackSerializer(feedback).data)

    @extend_schema(tags=TAGS, summary="Rate a task's result 👍 or 👎 (again to change it)",
                   request=s.FeedbackInputSerializer,
                   responses={200: s.FeedbackSerializer, 201: s.FeedbackSerializer,
                              **error_responses(400, 401, 404, 415, 429)})
    def post(self, request: Request, task_id: str) -> Response:
        task = _task(request, task_id)
        data = s.FeedbackInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        feedback, created = services.task_feedback_set(user=request.user, task=task,
                                                       rating=s.RATINGS[data.validated_data["rating"]],
                                                       comment=data.validated_data.get("comment", ""))
        return Response(s.FeedbackSerializer(feedback).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(tags=TAGS, summary="Withdraw your feedback on a task",
                   responses={204: None, **error_responses(401, 404, 429)})
    def delete(self, request: Request, task_id: str) -> Response:
        if not services.task_feedback_delete(user=request.user, task=_task(request, task_id)):
            raise NotFound("no feedback from you on this task")
        return Response(status=status.HTTP_204_NO_CONTENT)


class TaskToDatasetView(APIView):
    @extend_schema(tags=TAGS, summary="Add a task rated 👎 to one of your datasets as an item",
                   request=s.AddToDatasetInputSerializer,
                   responses={201: s.DatasetItemSerializer, **error_responses(400, 401, 404, 409, 415, 429)})
    def post(self, request: Request, task_id: str) -> Response:
        task = _task(request, task_id)
        data = s.AddToDatasetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = dataset_get_for_user(user=request.user, dataset_id=data.validated_data["dataset"], write=True)
        item = services.dataset_item_from_task(user=request.user, task=task, dataset=dataset,
                                               checks=data.validated_data.get("checks"),
                                               note=data.validated_data.get("note", ""))
        return Response(s.DatasetItemSerializer(item).data, status=status.HTTP_201_CREATED)
