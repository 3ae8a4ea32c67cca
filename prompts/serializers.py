"""Output serializers of the read-only prompts API."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from prompts.models import PromptTemplate, PromptVersion


class PromptVersionStatsSerializer(serializers.ModelSerializer):
    success_rate = serializers.FloatField(read_only=True, allow_null=True)
    mean_tokens_in = serializers.FloatField(read_only=True, allow_null=True)
    mean_tokens_out = serializers.FloatField(read_only=True, allow_null=True)
    mean_latency_ms = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = PromptVersion
        fields = ["uses", "successes", "failures", "success_rate", "mean_tokens_in", "mean_tokens_out",
                  "mean_latency_ms"]


class PromptVersionSerializer(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True)
    used = serializers.BooleanField(read_only=True)
    # Null for versions shipped with the product (loaded from prompts/defaults, not by a person).
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    statistics = serializers.SerializerMethodField()

    class Meta:
        model = PromptVersion
        fields = ["number", "label", "is_active", "used", "origin", "body", "temperature", "max_tokens",
                  "token_count", "note", "created_by", "created_at", "statistics"]

    @extend_schema_field(PromptVersionStatsSerializer)
    def get_statistics(self, version: PromptVersion) -> dict:
        return PromptVersionStatsSerializer(version).data


class PromptTemplateSerializer(serializers.ModelSerializer):
    active_version = serializers.SerializerMethodField()
    versions = PromptVersionSerializer(many=True, read_only=True)

    class Meta:
        model = PromptTemplate
        fields = ["slug", "description", "required_variables", "optional_variables", "response_schema",
                  "active_version", "versions", "updated_at"]

    def get_active_version(self, template: PromptTemplate) -> int | None:
        # Iterates the prefetched versions instead of issuing a query per template.
        return next((version.number for version in template.versions.all() if version.is_active), None)
