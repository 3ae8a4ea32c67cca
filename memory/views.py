"""GET /api/v1/memory/?q=&k=&kind=&mode= (search) and POST /api/v1/memory/ (add)."""

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

# EmbedderMismatch: stored vectors cannot be compared with the configured embedder's.
_ERRORS = {503: "Stored vectors come from another embedder; run `manage.py memory_reembed`."}


class MemoryView(APIView):
    @extend_schema(tags=["memory"], summary="Search memory",
                   parameters=[MemorySearchInput],
                   responses={200: MemorySearchOutput, **error_responses(400, 401, 429, 503, descriptions=_ERRORS)})
    def get(self, request: Request) -> Response:
        """Search the caller's entries and the shared knowledge base (never other users')."""
        params = MemorySearchInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        mode = data.get("mode") or settings.MEMORY_SEARCH_MODE
        kinds = [data["kind"]] if data.get("kind") else None
        hits = memory_search(query=data["q"], owner=request.user, k=data["k"], kinds=kinds, mode=mode)
        body = {"query": data["q"], "mode": mode, "results": [asdict(hit) for hit in hits]}
        return Response(MemorySearchOutput(body).data)

    @extend_schema(tags=["memory"], summary="Add a memory entry", request=MemoryCreateInput,
                   responses={201: MemoryEntryOutput, **error_responses(400, 401, 415, 429, 503, descriptions=_ERRORS)})
    def post(self, request: Request) -> Response:
        """Store a note (or document) owned by the caller."""
        payload = MemoryCreateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        entry = memory_add(owner=request.user, **payload.validated_data)
        return Response(MemoryEntryOutput(entry).data, status=status.HTTP_201_CREATED)
