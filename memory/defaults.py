"""The sample knowledge base in memory/knowledge/, loaded as shared entries (owner NULL)."""

from __future__ import annotations

from pathlib import Path

from memory.importing import Chunk, chunks_from_file, memory_import_chunks, table_analyze
from memory.models import MemoryEntry
from memory.services import content_hash

KNOWLEDGE_DIR = Path(__file__).resolve().parent / "knowledge"


def knowledge_chunks() -> list[Chunk]:
    """One entry per paragraph of each Markdown file (each paragraph is a self-contained note)."""
    chunks: list[Chunk] = []
    for path in sorted(KNOWLEDGE_DIR.glob("*.md")):
        chunks += chunks_from_file(path, kind=MemoryEntry.Kind.DOCUMENT, merge=False, source=f"knowledge/{path.name}")
    return chunks


def load_defaults() -> str:
    chunks = knowledge_chunks()
    hashes = {content_hash(chunk.content) for chunk in chunks}
    # Fast path on every start: one indexed count instead of embedding anything.
    present = MemoryEntry.objects.filter(owner__isnull=True, content_hash__in=hashes).count()
    if present >= len(hashes):
        return f"knowledge base already loaded ({present} entries)"
    result = memory_import_chunks(owner=None, chunks=chunks)
    if result.added:
        table_analyze()
    return f"knowledge base: {result.added} entries added, {result.skipped} already present"
