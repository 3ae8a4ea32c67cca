"""Read-only API over prompt templates, versions and their statistics.

Prompts are shared configuration, not user data: every authenticated user may read them
(the orchestrator's choices are auditable), and nobody writes them through the API; the
admin is where staff edit them.
"""

from __future__ import annotations

from rest_framework import generics

from prompts.selectors import templates_with_versions
from prompts.serializers import PromptTemplateSerializer


class PromptListView(generics.ListAPIView):
    serializer_class = PromptTemplateSerializer

    def get_queryset(self):
        return templates_with_versions()


class PromptDetailView(generics.RetrieveAPIView):
    serializer_class = PromptTemplateSerializer
    lookup_field = "slug"

    def get_queryset(self):
        return templates_with_versions()
