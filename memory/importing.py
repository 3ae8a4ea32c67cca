"""Import text, Markdown and JSONL files into memory, idempotently by content hash.

Text and Markdown are cut into chunks at paragraph boundaries: short paragraphs are merged
up to ``max_chars``, a paragraph longer than that is split at sentence boundaries (and a
sentence longer than that, at word boundaries). A JSONL file holds one entry per line:
``{"content": "...", "metadata": {...}?, "kind": "..."?}``.

A chunk the same owner already has (same sha256) is skipped, so importing a file twice
adds nothing the second time.

A bulk import (``bulk=True``; memory_import chooses it from MEMORY_IMPORT_BULK_MIN) writes
with COPY and drops the HNSW index before its first rows: the caller rebuilds the index
once at the end (memory.indexing.index_build), far faster than growing it row by row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from agentos.api import ApplicationError
from memory.embedders import get_embedder
from memory.indexing import index_drop, index_exists
from memory.models import MemoryEntry
from memory.services import content_hash, embedder_check, reset_search_caches, vector_literal

MAX_CHARS = 1000
BATCH_SIZE = 256
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_HEADING = re.compile(r"^#{1,6}\s+(.*)$")


@dataclass
class Chunk:
    content: str
    kind: str
    metadata: dict = field(default_factory=dict)


@dataclass
class ImportResult:
    added: int = 0
    skipped: int = 0
    files: int = 0
    # True when a bulk import dropped the HNSW index: the caller must rebuild it.
    index_dropped: bool = False


def _split_long(text: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > max_chars:  # one huge sentence: cut at a word boundary
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if current and len(current) + 1 + len(sentence) > max_chars:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return pieces


def chunk_text(text: str, *, max_chars: int = MAX_CHARS, merge: bool = True) -> list[tuple[str, str]]:
    """[(heading, chunk)] of a text or Markdown document.

    A heading line starts a new chunk and is kept as the chunk's heading (metadata), not
    merged into the text. With merge=False every paragraph is its own chunk (one note each).
    """
    chunks: list[tuple[str, str]] = []
    heading, current = "", ""

    def flush() -> None:
        nonlocal current
        if current:
            chunks.append((heading, current))
            current = ""

    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        block = block.strip()
        if not block:
            continue
        match = _HEADING.match(block.splitlines()[0])
        if match:
            flush()
            heading = match.group(1).strip()
            block = "\n".join(block.splitlines()[1:]).strip()
            if not block:
                continue
        paragraph = " ".join(line.strip() for line in block.splitlines())
        for piece in _split_long(paragraph, max_chars) if len(paragraph) > max_chars else [paragraph]:
            if not merge or (current and len(current) + 2 + len(piece) > max_chars):
                flush()
            current = f"{current}\n\n{piece}" if current else piece
    flush()
    return chunks


def chunks_from_file(path: Path, *, kind: str, merge: bool = True, source: str | None = None) -> Iterator[Chunk]:
    source = source or str(path)
    if path.suffix.lower() == ".jsonl":
        yield from _chunks_from_jsonl(path, kind=kind, source=source)
        return
    if path.suffix.lower() not in (".txt", ".md", ".markdown"):
        raise ApplicationError(f"{path}: only .txt, .md and .jsonl files can be imported", field="path")
    for index, (heading, content) in enumerate(chunk_text(path.read_text(encoding="utf-8"), merge=merge)):
        metadata: dict[str, Any] = {"source": source, "chunk": index}
        if heading:
            metadata["title"] = heading
        yield Chunk(content=content, kind=kind, metadata=metadata)


def _chunks_from_jsonl(path: Path, *, kind: str, source: str) -> Iterator[Chunk]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ApplicationError(f"{path}:{number}: not JSON ({error.msg})", field="path") from None
            if not isinstance(row, dict) or not isinstance(row.get("content"), str) or not row["content"].strip():
                raise ApplicationError(f'{path}:{number}: each line needs a non-empty "content" string', field="path")
            metadata = row.get("metadata") or {}
            if not isinstance(metadata, dict):
                raise ApplicationError(f'{path}:{number}: "metadata" must be an object', field="path")
            entry_kind = row.get("kind") or kind
            if entry_kind not in MemoryEntry.Kind.values:
                raise ApplicationError(f"{path}:{number}: unknown kind {entry_kind!r}", field="path")
            yield Chunk(content=row["content"].strip(), kind=entry_kind, metadata={"source": source, **metadata})


def _batches(chunks: Iterable[Chunk], size: int) -> Iterator[list[Chunk]]:
    batch: list[Chunk] = []
    for chunk in chunks:
        batch.append(chunk)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


COPY_COLUMNS = ("owner_id", "workspace_id", "content", "content_hash", "embedding", "embedder", "kind", "metadata",
                "created_at")


def _copy_entries(rows: list[tuple]) -> None:
    """COPY the rows (in COPY_COLUMNS order) into the table, in the current transaction."""
    with connection.cursor() as cursor, cursor.copy(
        f"COPY {MemoryEntry._meta.db_table} ({', '.join(COPY_COLUMNS)}) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)


def memory_import_chunks(*, owner: Any, chunks: Iterable[Chunk], progress: Any = None,
                         bulk: bool = False, workspace: Any = None) -> ImportResult:
    """Embed and store the chunks the workspace does not hold yet (``workspace``, else the
    owner's default workspace; without an owner, the shared knowledge base; the caller checks
    the owner's role there); `progress` is a tqdm bar or None.

    With ``bulk`` the rows go in with COPY and the HNSW index is dropped before the first
    of them (``result.index_dropped``); the caller rebuilds it when the import is over.
    When the whole load is over and it added rows, the caller runs table_analyze()."""
    embedder = get_embedder()
    embedder_check(embedder.name, embedder.dimensions)
    owner_id = owner.pk if owner is not None else None
    # bulk_create and COPY send no pre_save signal: the workspace is set here.
    if owner is None:
        workspace_id = None
    elif workspace is not None:
        workspace_id = workspace.pk
    else:
        from workspaces.access import default_workspace

        workspace_id = default_workspace(owner).pk
    result = ImportResult()
    for batch in _batches(chunks, BATCH_SIZE):
        by_hash: dict[str, Chunk] = {}
        for chunk in batch:
            by_hash.setdefault(content_hash(chunk.content), chunk)
        known = set(
            MemoryEntry.objects.filter(owner_id=owner_id, workspace_id=workspace_id,
                                       content_hash__in=list(by_hash)).values_list(
                "content_hash", flat=True
            )
        )
        new = {digest: chunk for digest, chunk in by_hash.items() if digest not in known}
        vectors = embedder.embed([chunk.content for chunk in new.values()]) if new else []
        if bulk and new and not result.index_dropped and index_exists():
            index_drop()
            result.index_dropped = True
        with transaction.atomic():
            if bulk:
                now = timezone.now()
                _copy_entries([(owner_id, workspace_id, chunk.content, digest, vector_literal(vector), embedder.name,
                                chunk.kind, json.dumps(chunk.metadata), now)
                               for (digest, chunk), vector in zip(new.items(), vectors, strict=True)])
            else:
                MemoryEntry.objects.bulk_create(
                    MemoryEntry(owner_id=owner_id, workspace_id=workspace_id, content=chunk.content,
                                content_hash=digest, embedding=vector, embedder=embedder.name, kind=chunk.kind,
                                metadata=chunk.metadata)
                    for (digest, chunk), vector in zip(new.items(), vectors, strict=True)
                )
        result.added += len(new)
        result.skipped += len(batch) - len(new)
        if progress is not None:
            progress.update(len(batch))
    return result


def table_analyze() -> None:
    """Refresh the planner's statistics of the memory table after a load, as PostgreSQL
    advises, rather than waiting for autovacuum: until then a new table has none, and a
    search may walk the whole HNSW graph of a few hundred entries where reading them is
    faster. Once per load, not per file: it samples up to 30,000 rows. The row estimate
    also sizes the search depth (memory.services.default_ef_search), so this process
    forgets its cached one."""
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {MemoryEntry._meta.db_table}")
    reset_search_caches()
