"""REST API of workspaces: list them, members and roles, service tokens, the audit log."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agentos.api import error_responses
from workspaces import services
from workspaces.access import is_superuser, workspaces_for_user
from workspaces.models import Membership, Role
from workspaces.selectors import AUDIT_FILTERS, audit_event_to_dict, audit_events, workspace_get_for_user

AUDIT_EXPORT_MAX = 10_000


class MemberInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.values)


class TokenInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    role = serializers.ChoiceField(choices=Role.values)


def _workspace_dict(workspace, role: str | None) -> dict:
    return {"id": workspace.pk, "name": workspace.name, "slug": workspace.slug,
            "personal": workspace.personal_for_id is not None, "role": role}


class WorkspaceListView(APIView):
    @extend_schema(tags=["workspaces"], summary="Your workspaces and your role in each",
                   responses={200: OpenApiTypes.OBJECT, **error_responses(401, 429)})
    def get(self, request: Request) -> Response:
        workspaces = workspaces_for_user(user=request.user).order_by("name", "id")
        # The caller's roles in one query; staff see every workspace and are admin in each (role_of).
        staff = is_superuser(request.user)
        roles = {} if staff else dict(Membership.objects.filter(user_id=request.user.pk)
                                      .values_list("workspace_id", "role"))
        return Response({"workspaces": [_workspace_dict(w, Role.ADMIN if staff else roles.get(w.pk))
                                        for w in workspaces]})


class MembersView(APIView):
    @extend_schema(tags=["workspaces"], summary="Members of a workspace and their roles",
                   responses={200: OpenApiTypes.OBJECT, **error_responses(401, 404, 429)})
    def get(self, request: Request, workspace_id: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
        members = (Membership.objects.filter(workspace=workspace).select_related("user", "user__service_token")
                   .order_by("user__username"))
        return Response({"members": [{"username": m.user.get_username(), "role": m.role,
                                      "service_token": hasattr(m.user, "service_token")} for m in members]})

    @extend_schema(tags=["workspaces"], summary="Add a member or change their role (admins)",
                   request=MemberInput,
                   responses={200: OpenApiTypes.OBJECT, **error_responses(400, 401, 403, 404, 409, 415, 429)})
    def post(self, request: Request, workspace_id: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
        data = MemberInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_set(actor=request.user, workspace=workspace, **data.validated_data)
        return Response({"username": membership.user.get_username(), "role": membership.role})


class MemberDeleteView(APIView):
    @extend_schema(tags=["workspaces"], summary="Remove a member (admins)", request=None,
                   responses={204: None, **error_responses(401, 403, 404, 409, 429)})
    def delete(self, request: Request, workspace_id: str, username: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
        services.membership_remove(actor=request.user, workspace=workspace, username=username)
        return Response(status=204)


def _token_dict(token, key: str | None = None, roles: dict | None = None) -> dict:
    if roles is None:
        roles = dict(Membership.objects.filter(user_id=token.user_id, workspace_id=token.workspace_id)
                     .values_list("user_id", "role"))
    body = {"id": token.pk, "name": token.name, "role": roles.get(token.user_id),
            "created_at": token.created_at, "revoked_at": token.revoked_at}
    if key is not None:
        body["key"] = key
    return body


class TokensView(APIView):
    @extend_schema(tags=["workspaces"], summary="Service tokens of a workspace (admins)",
                   responses={200: OpenApiTypes.OBJECT, **error_responses(401, 403, 404, 429)})
    def get(self, request: Request, workspace_id: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id, at_least=Role.ADMIN)
        # Every token's role in one query (a token is a user that is a member of this workspace).
        roles = dict(Membership.objects.filter(workspace=workspace, user__service_token__isnull=False)
                     .values_list("user_id", "role"))
        return Response({"tokens": [_token_dict(token, roles=roles) for token in workspace.service_tokens.all()]})

    @extend_schema(tags=["workspaces"], summary="Create a service token with one role (admins)",
                   description="The key is in the answer only; use it as `Authorization: Token <key>`.",
                   request=TokenInput,
                   responses={201: OpenApiTypes.OBJECT, **error_responses(400, 401, 403, 404, 415, 429)})
    def post(self, request: Request, workspace_id: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
        data = TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        token, key = services.service_token_create(actor=request.user, workspace=workspace, **data.validated_data)
        return Response(_token_dict(token, key), status=201)


class TokenRotateView(APIView):
    @extend_schema(tags=["workspaces"], summary="Replace a service token's key (admins)", request=None,
                   responses={200: OpenApiTypes.OBJECT, **error_responses(401, 403, 404, 409, 429)})
    def post(self, request: Request, workspace_id: str, token_id: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
        token, key = services.service_token_rotate(actor=request.user, workspace=workspace, token_id=token_id)
        return Response(_token_dict(token, key))


class TokenRevokeView(APIView):
    @extend_schema(tags=["workspaces"], summary="Revoke a service token (admins)", request=None,
                   responses={200: OpenApiTypes.OBJECT, **error_responses(401, 403, 404, 409, 429)})
    def post(self, request: Request, workspace_id: str, token_id: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
        token = services.service_token_revoke(actor=request.user, workspace=workspace, token_id=token_id)
        return Response(_token_dict(token))


class AuditView(APIView):
    @extend_schema(tags=["workspaces"], summary="The workspace's audit log as JSON (admins)",
                   description=f"Newest first, at most {AUDIT_EXPORT_MAX} events. `action` takes a full action "
                               "(`task.pause`) or a prefix ending in a dot (`task.`).",
                   parameters=[OpenApiParameter(name, OpenApiTypes.STR) for name in AUDIT_FILTERS],
                   responses={200: OpenApiResponse(OpenApiTypes.OBJECT),
                              **error_responses(400, 401, 403, 404, 429)})
    def get(self, request: Request, workspace_id: str) -> Response:
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id, at_least=Role.ADMIN)
        events = audit_events(workspace=workspace, filters=request.query_params.dict())[:AUDIT_EXPORT_MAX]
        return Response({"workspace": workspace.pk, "events": [audit_event_to_dict(event) for event in events]})
