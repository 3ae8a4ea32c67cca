"""Read-only API over prompt templates, versions and their statistics.

Prompts are shared configuration, not user data: every authenticated user may read them
(the orchestrator's choices are auditable), and nobody writes them through the API; the
admin is where staff edit them.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.response import Response

from agentos.api import error_responses
from prompts.models import PromptRollout
from prompts.selectors import templates_with_versions
from prompts.serializers import PromptRolloutSerializer, PromptTemplateSerializer


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


@extend_schema(tags=["prompts"], summary="Rollouts of candidate versions, with each arm's figures (read-only)",
               responses={200: PromptRolloutSerializer(many=True), **error_responses(401, 429)})
class PromptRolloutListView(generics.ListAPIView):
    serializer_class = PromptRolloutSerializer

    def get_queryset(self):
        return PromptRollout.objects.select_related("template", "active_version__template", "candidate__template")

    def list(self, request, *args, **kwargs):
        from prompts.rollouts import rollouts_figures

        queryset = self.get_queryset()
        page = self.paginate_queryset(queryset)
        rollouts = list(queryset) if page is None else page
        # Every rollout's arms and feedback at once (no query per rollout).
        context = {**self.get_serializer_context(), "figures": rollouts_figures(rollouts=rollouts)}
        data = self.get_serializer(rollouts, many=True, context=context).data
        return Response(data) if page is None else self.get_paginated_response(data)
