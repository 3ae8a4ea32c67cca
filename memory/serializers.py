"""Input and output serializers of the memory API."""

from __future__ import annotations

from rest_framework import serializers

from memory.models import MemoryEntry
from memory.services import MAX_K, MODES
from tasks.options import StrictCharField


class MemorySearchInput(serializers.Serializer):
    # 1,000 characters keep the URL under the HTTP server's request-line limit (16 KB) even
    # when every character is percent-encoded UTF-8; longer text belongs in a POST.
    q = serializers.CharField(max_length=1000, trim_whitespace=True)
    k = serializers.IntegerField(min_value=1, max_value=MAX_K, default=5)
    kind = serializers.ChoiceField(choices=MemoryEntry.Kind.values, required=False)
    mode = serializers.ChoiceField(choices=MODES, required=False)
    workspace = serializers.IntegerField(min_value=1, required=False,
                                         help_text="Search this workspace only (you must be a member); "
                                                   "default: every workspace you are a member of.")


class MemoryHitOutput(serializers.Serializer):
    id = serializers.IntegerField()
    content = serializers.CharField()
    kind = serializers.CharField()
    score = serializers.FloatField()
    metadata = serializers.DictField()


class MemorySearchOutput(serializers.Serializer):
    query = serializers.CharField()
    mode = serializers.CharField()
    results = MemoryHitOutput(many=True)


class MemoryCreateInput(serializers.Serializer):
    content = StrictCharField(max_length=20000, trim_whitespace=True)
    kind = serializers.ChoiceField(choices=MemoryEntry.Kind.values, default=MemoryEntry.Kind.NOTE)
    metadata = serializers.DictField(required=False, default=dict)
    workspace = serializers.IntegerField(min_value=1, required=False,
                                         help_text="The workspace the entry goes to (you must be an operator "
                                                   "there); default: your personal workspace.")


class MemoryEntryOutput(serializers.ModelSerializer):
    shared = serializers.SerializerMethodField()

    class Meta:
        model = MemoryEntry
        fields = ["id", "content", "kind", "metadata", "source_task_id", "embedder", "workspace", "shared",
                  "created_at"]

    def get_shared(self, entry: MemoryEntry) -> bool:
        return entry.owner_id is None
