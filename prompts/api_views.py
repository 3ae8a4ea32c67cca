"""Read-only API over prompt templates, versions and their statistics.

Prompts are shared configuration, not user data: every authenticated user may read them
(the orchestrator's choices are auditable), and nobody writes them through the API; the
admin is where staff edit them.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics

from agentos.api import error_responses
from prompts.selectors import templates_with_versions
from prompts.serializers import PromptTemplateSerializer


@extend_schema(tags=["prompts"], summary="Prompt templates with their versions and statistics",
               responses={200: PromptTemplateSerializer(many=True), **error_responses(401, 429)})
class PromptListView(generics.ListAPIView):
    serializer_class = PromptTemplateSerializer

    def get_queryset(self):
        return templates_with_versions()


@extend_schema(tags=["prompts"], summary="One prompt template with its versions and statistics",
               responses={200: PromptTemplateSerializer,
                          **error_responses(401, 404, 429, descriptions={404: "No template with this slug."})})
class PromptDetailView(generics.RetrieveAPIView):
    serializer_class = PromptTemplateSerializer
    lookup_field = "slug"

    def get_queryset(self):
        return templates_with_versions()
