"""The tools API: discovery of enabled tools and direct, deterministic invocation."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agentos.api import ApplicationError, Conflict, NotFound, error_responses
from tools.dispatch import ToolContext, argument_problem, dispatch
from tools.registry import ToolSpec, UnknownTool, enabled_tools, get_tool, is_enabled


class ApprovalRequired(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "approval_required"


class ToolSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    parameters = serializers.JSONField(help_text="JSON Schema (draft 2020-12) of the arguments")
    requires_approval = serializers.BooleanField()
    side_effects = serializers.BooleanField()


class InvokeInputSerializer(serializers.Serializer):
    arguments = serializers.DictField(required=False, default=dict)
    idempotency_key = serializers.CharField(required=False, max_length=100, allow_blank=False)


class InvokeOutputSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    result = serializers.JSONField(required=False)
    error = serializers.CharField(required=False)
    error_code = serializers.CharField(required=False)
    duration_ms = serializers.IntegerField()


class ToolListSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = ToolSerializer(many=True)


class ToolListView(APIView):
    @extend_schema(tags=["tools"], operation_id="v1_tools_list",
                   summary="The enabled tools, with the JSON Schema of their arguments",
                   responses={200: ToolListSerializer, **error_responses(401, 429)})
    def get(self, request: Request) -> Response:
        tools = [spec.as_dict() for spec in enabled_tools()]
        return Response({"count": len(tools), "results": tools})


def invocable_tool(*, name: str, user) -> ToolSpec:
    """The tool ``user`` may run directly, or the ApplicationError saying why not."""
    try:
        spec = get_tool(name)
    except UnknownTool:
        raise NotFound(f"no tool named '{name}'") from None
    if not is_enabled(name):
        raise NotFound(f"tool '{name}' is disabled")
    if spec.waits_for_human:
        raise Conflict(f"{name} waits for a person's answer, so it only runs inside a task", code="needs_task")
    if spec.requires_approval and not user.is_staff:
        raise ApprovalRequired(f"{name} needs approval; it runs only inside a task or for staff")
    return spec


_INVOKE_ERRORS = {
    400: "Invalid input or arguments that break the tool's schema; `field` names the offending one.",
    403: "The tool needs approval: it runs only inside a task, or for staff; or your role in your default "
         "workspace is viewer (running a tool is acting, not reading).",
    404: "No such tool, or it is disabled.",
    409: "The tool waits for a person's answer, so it only runs inside a task.",
}


class ToolInvokeView(APIView):
    @extend_schema(
        tags=["tools"],
        summary="Run a tool directly (a failure of the tool itself is 200 with ok false)",
        request=InvokeInputSerializer,
        responses={200: InvokeOutputSerializer,
                   **error_responses(400, 401, 403, 404, 409, 415, 429, descriptions=_INVOKE_ERRORS)},
    )
    def post(self, request: Request, name: str) -> Response:
        from workspaces.access import workspace_for_write

        workspace_for_write(user=request.user)  # an operator where their work goes (a viewer token: 403)
        spec = invocable_tool(name=name, user=request.user)
        data = InvokeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        arguments = data.validated_data["arguments"]
        problem = argument_problem(spec, arguments)
        if problem:
            message, field = problem
            raise ApplicationError(message, field=f"arguments.{field}" if field else "arguments",
                                   code="invalid_arguments")
        key = data.validated_data.get("idempotency_key")
        # Namespaced per user: one user's key can never return another user's stored entry.
        context = ToolContext(owner_id=request.user.pk, idempotency_key=f"api:{request.user.pk}:{key}" if key else None)
        outcome = dispatch(name=name, arguments=arguments, context=context)
        return Response(outcome.as_dict())
