"""Input and output serializers of the evals API."""

from __future__ import annotations

from rest_framework import serializers

from evals.models import Dataset, DatasetItem, EvalResult, EvalRun, TaskFeedback


class DatasetItemSerializer(serializers.ModelSerializer):
    source_task = serializers.UUIDField(source="source_task_id", read_only=True, allow_null=True)

    class Meta:
        model = DatasetItem
        fields = ["id", "query", "variables", "checks", "note", "source_task", "created_at"]


class DatasetSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    template = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    shipped = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = ["id", "name", "description", "template", "owner", "shipped", "created_at", "updated_at"]

    def get_shipped(self, dataset: Dataset) -> bool:
        return dataset.owner_id is None


class DatasetDetailSerializer(DatasetSerializer):
    items = DatasetItemSerializer(many=True, read_only=True)

    class Meta(DatasetSerializer.Meta):
        fields = [*DatasetSerializer.Meta.fields, "items"]


class DatasetInputSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    template = serializers.SlugField(required=False, allow_null=True, help_text="Slug of a prompt template.")


class DatasetCreateSerializer(DatasetInputSerializer):
    workspace = serializers.IntegerField(required=False, allow_null=True,
                                         help_text="Id of the workspace (default: your personal one); you must be "
                                                   "a prompt editor there.")


class DatasetItemInputSerializer(serializers.Serializer):
    query = serializers.CharField(required=False, allow_blank=True, max_length=8000)
    variables = serializers.JSONField(required=False)
    checks = serializers.JSONField(required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


class EvalRunInputSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()
    prompt = serializers.SlugField(help_text="Slug of the prompt template.")
    version = serializers.IntegerField(min_value=1, help_text="Version number.")
    concurrency = serializers.IntegerField(required=False, min_value=1, max_value=64)


class EvalRunSerializer(serializers.ModelSerializer):
    dataset = serializers.SlugRelatedField(slug_field="name", read_only=True)
    dataset_id = serializers.IntegerField(read_only=True)
    version = serializers.CharField(source="version.label", read_only=True)
    progress = serializers.FloatField(read_only=True)
    pass_rate = serializers.FloatField(read_only=True, allow_null=True)
    mean_latency_ms = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = EvalRun
        fields = ["id", "dataset", "dataset_id", "version", "status", "progress", "total", "done", "passed", "errors",
                  "pass_rate", "tokens_in", "tokens_out", "mean_latency_ms", "concurrency", "provider", "model",
                  "error", "created_at", "started_at", "finished_at"]


class EvalResultSerializer(serializers.ModelSerializer):
    item = serializers.IntegerField(source="item_id", read_only=True)

    class Meta:
        model = EvalResult
        fields = ["item", "status", "passed", "output", "text", "error", "checks", "tokens_in", "tokens_out",
                  "latency_ms", "finished_at"]


class CompareItemSerializer(serializers.Serializer):
    item = serializers.IntegerField(source="item_id")
    summary = serializers.CharField()
    differs = serializers.BooleanField()
    a = EvalResultSerializer(allow_null=True)
    b = EvalResultSerializer(allow_null=True)


class CompareSerializer(serializers.Serializer):
    a = EvalRunSerializer()
    b = EvalRunSerializer()
    items = CompareItemSerializer(many=True)


RATINGS = {"up": TaskFeedback.Rating.UP, "down": TaskFeedback.Rating.DOWN}


class FeedbackInputSerializer(serializers.Serializer):
    rating = serializers.ChoiceField(choices=["up", "down"], help_text='"up" (👍) or "down" (👎).')
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class FeedbackSerializer(serializers.ModelSerializer):
    task_id = serializers.UUIDField(read_only=True)
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)
    rating = serializers.SerializerMethodField()

    class Meta:
        model = TaskFeedback
        fields = ["task_id", "user", "rating", "comment", "created_at", "updated_at"]

    def get_rating(self, feedback: TaskFeedback) -> str:
        return "up" if feedback.rating > 0 else "down"


class AddToDatasetInputSerializer(serializers.Serializer):
    dataset = serializers.IntegerField(help_text="Id of one of your datasets.")
    checks = serializers.JSONField(required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)
