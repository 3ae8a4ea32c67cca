"""Models of the memory app: one table of embedded text entries."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models.functions import Cast
from django.utils import timezone
from pgvector.django import HalfVectorField, HnswIndex, VectorField

# Fixed HNSW build parameters, chosen with bench/memory_search.py (docs/memory.md "A million
# entries"): m 16 and ef_construction 96 build a million entries in minutes on 2 cores with
# recall@10 of 0.95-0.99 at 100,000 where m 24 / ef_construction 128 needed 1.5 times the CPU.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 96
HNSW_INDEX_NAME = "memory_entry_embedding_hnsw"


class MemoryEntry(models.Model):
    class Kind(models.TextChoices):
        DOCUMENT = "document", "Document"
        TASK_RESULT = "task_result", "Task result"
        NOTE = "note", "Note"

    # NULL owner = the shared knowledge base, readable by every user.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="memory_entries"
    )
    # The workspace of an owned entry (the owner's default one when not given); NULL when shared.
    workspace = models.ForeignKey("workspaces.Workspace", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="memory_entries")
    content = models.TextField()
    # sha256 of the content: `memory_import` skips a chunk the same owner already has.
    content_hash = models.CharField(max_length=64)
    # Nullable so that a change of dimension can clear the column before re-embedding;
    # a NULL embedding is never returned by vector search.
    embedding = VectorField(dimensions=settings.MEMORY_DIMENSIONS, null=True, blank=True)
    # "<embedder>-<dimensions>" that produced `embedding`; entries of another embedder
    # are never compared with the configured one (see memory.services.EmbedderMismatch).
    embedder = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.NOTE)
    metadata = models.JSONField(default=dict, blank=True)
    # No foreign key: tasks may be deleted while what they taught is kept.
    source_task_id = models.UUIDField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    search_vector = models.GeneratedField(
        expression=SearchVector("content", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        verbose_name_plural = "memory entries"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "content_hash"], name="memory_entry_owner_hash"),
            # Serves the mismatch check `embedder < x OR embedder > x LIMIT 1` without a scan.
            models.Index(fields=["embedder"], name="memory_entry_embedder"),
            models.Index(fields=["source_task_id"], name="memory_entry_source_task"),
            # Half-precision copies of the vectors: half the size of a float index at the
            # same recall (docs/memory.md); memory.indexing.index_sql builds the same index.
            HnswIndex(
                OpClass(Cast("embedding", HalfVectorField(dimensions=settings.MEMORY_DIMENSIONS)),
                        name="halfvec_cosine_ops"),
                name=HNSW_INDEX_NAME,
                m=HNSW_M,
                ef_construction=HNSW_EF_CONSTRUCTION,
            ),
            GinIndex(fields=["search_vector"], name="memory_entry_search_gin"),
        ]

    def __str__(self) -> str:
        return self.content[:60]
