"""Output serializers of the read-only prompts API."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from prompts.models import PromptRollout, PromptTemplate, PromptVersion


class PromptVersionStatsSerializer(serializers.ModelSerializer):
    success_rate = serializers.FloatField(read_only=True, allow_null=True)
    mean_tokens_in = serializers.FloatField(read_only=True, allow_null=True)
    mean_tokens_out = serializers.FloatField(read_only=True, allow_null=True)
    mean_latency_ms = serializers.FloatField(read_only=True, allow_null=True)
    # Cost (observability): summed from the version's steps that have a price.
    cost_usd = serializers.SerializerMethodField(help_text="USD of this version's priced model calls.")
    priced_uses = serializers.SerializerMethodField(help_text="Model calls with a price (cost_usd sums these).")
    mean_cost_usd = serializers.SerializerMethodField(help_text="USD per priced call; null without one.")

    class Meta:
        model = PromptVersion
        fields = ["uses", "successes", "failures", "success_rate", "mean_tokens_in", "mean_tokens_out",
                  "mean_latency_ms", "cost_usd", "priced_uses", "mean_cost_usd"]

    def _cost(self, version: PromptVersion) -> dict:
        from observability.selectors import VersionCosts

        costs = self.context.get("version_costs")
        if costs is None:
            costs = self.context["version_costs"] = VersionCosts()
        return costs.get(version.label)

    def get_cost_usd(self, version: PromptVersion) -> float:
        return self._cost(version)["cost_usd"]

    def get_priced_uses(self, version: PromptVersion) -> int:
        return self._cost(version)["priced_uses"]

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_mean_cost_usd(self, version: PromptVersion) -> float | None:
        return self._cost(version)["mean_cost_usd"]


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
        if "version_costs" not in self.context:  # one cost query per response, not per version
            from observability.selectors import VersionCosts

            self.context["version_costs"] = VersionCosts()
        return PromptVersionStatsSerializer(version, context=self.context).data


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


class RolloutArmSerializer(serializers.Serializer):
    label = serializers.CharField()
    uses = serializers.IntegerField()
    successes = serializers.IntegerField()
    failures = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True)
    failure_rate = serializers.FloatField(allow_null=True)
    mean_tokens_in = serializers.FloatField(allow_null=True)
    mean_tokens_out = serializers.FloatField(allow_null=True)
    mean_latency_ms = serializers.FloatField(allow_null=True)
    feedback_up = serializers.IntegerField()
    feedback_down = serializers.IntegerField()


class RolloutArmsSerializer(serializers.Serializer):
    active = RolloutArmSerializer()
    candidate = RolloutArmSerializer()


class PromptRolloutSerializer(serializers.ModelSerializer):
    template = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    active_version = serializers.CharField(source="active_version.label", read_only=True)
    candidate = serializers.CharField(source="candidate.label", read_only=True)
    arms = serializers.SerializerMethodField(help_text="Each arm's figures since the rollout started.")

    class Meta:
        model = PromptRollout
        fields = ["id", "template", "active_version", "candidate", "weight", "status", "min_uses", "failure_margin",
                  "arms", "stop_reason", "stop_numbers", "started_at", "ended_at"]

    @extend_schema_field(RolloutArmsSerializer)
    def get_arms(self, rollout: PromptRollout) -> dict:
        """From the context's ``figures`` (prompts.rollouts.rollouts_figures of the whole page,
        so a list costs the same queries however many rollouts it shows), else this one's."""
        from prompts.rollouts import rollouts_figures

        figures = self.context.get("figures") or {}
        if rollout.pk not in figures:
            figures = rollouts_figures(rollouts=[rollout])
        return RolloutArmsSerializer(figures[rollout.pk]).data
