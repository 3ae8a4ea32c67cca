from django.contrib import admin

from memory.models import MemoryEntry


@admin.register(MemoryEntry)
class MemoryEntryAdmin(admin.ModelAdmin):
    list_display = ["id", "short_content", "kind", "owner", "embedder", "source_task_id", "created_at"]
    list_filter = ["kind", "embedder", ("owner", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["content", "owner__username", "=source_task_id"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    # The vector and the hash are derived from the content; editing them by hand would corrupt search.
    exclude = ["embedding"]
    readonly_fields = ["content", "content_hash", "embedder", "created_at"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False  # entries are added through the API, memory_import or the memory tools (they embed)

    @admin.display(description="content")
    def short_content(self, entry: MemoryEntry) -> str:
        return entry.content if len(entry.content) <= 80 else entry.content[:77] + "..."
