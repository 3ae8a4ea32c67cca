"""GET /api/v1/memory/?q=&k=&kind=&mode=&workspace= (search) and POST /api/v1/memory/ (add).

Both scope to the caller's workspaces (workspaces.access): a search sees the shared
knowledge base plus the entries of the caller's workspaces (or of the one named, where
they must be a member: 404 otherwise); an entry is added to a workspace where the caller
is an operator (404 outside their workspaces, 403 for a viewer)."""

from __future__ import annotations

from dataclasses import asdict

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agentos.api import error_responses
from memory.serializers import (
    MemoryCreateInput,
    MemoryEntryOutput,
    MemorySearchInput,
    MemorySearchOutput,
)
from memory.services import memory_add, memory_search
from workspaces.access import require_role, workspace_for_write
from workspaces.models import Role

# EmbedderMismatch: stored vectors cannot be compared with the configured embedder's.
_ERRORS = {503: "Stored vectors come from another embedder; run `manage.py memory_reembed`."}


class MemoryView(APIView):
    @extend_schema(tags=["memory"], summary="Search memory",
                   parameters=[MemorySearchInput],
                   responses={200: MemorySearchOutput,
                              **error_responses(400, 401, 404, 429, 503, descriptions=_ERRORS)})
    def get(self, request: Request) -> Response:
        """Search the shared knowledge base and the entries of the caller's workspaces (or of
        the one named); never another workspace's."""
        params = MemorySearchInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        mode = data.get("mode") or settings.MEMORY_SEARCH_MODE
        kinds = [data["kind"]] if data.get("kind") else None
        workspace = data.get("workspace")
        if workspace is not None:
            require_role(request.user, workspace, Role.VIEWER, what="workspace")
        hits = memory_search(query=data["q"], owner=request.user, workspace=workspace, k=data["k"], kinds=kinds,
                             mode=mode)
        body = {"query": data["q"], "mode": mode, "results": [asdict(hit) for hit in hits]}
        return Response(MemorySearchOutput(body).data)

    @extend_schema(tags=["memory"], summary="Add a memory entry", request=MemoryCreateInput,
                   responses={201: MemoryEntryOutput,
                              **error_responses(400, 401, 403, 404, 415, 429, 503, descriptions=_ERRORS)})
    def post(self, request: Request) -> Response:
        """Store a note (or document) owned by the caller, in a workspace where they are an operator."""
        payload = MemoryCreateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        workspace = workspace_for_write(user=request.user, workspace_id=data.pop("workspace", None),
                                        at_least=Role.OPERATOR)
        entry = memory_add(owner=request.user, workspace=workspace, **data)
        return Response(MemoryEntryOutput(entry).data, status=status.HTTP_201_CREATED)
