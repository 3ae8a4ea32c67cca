"""Streaming corpus for bench/memory_search.py: texts generated, embedded and COPYed in chunks.

Nothing holds the whole corpus: entry i is a pure function of (seed, i), so a chunk can be
made in any process and the 100k rows are the first 100k of the 1M. Embedding (pure
Python, the product's hashing embedder) runs in a process pool while the main process
streams the previous chunk into COPY.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import random
import time
from collections.abc import Iterator

FRAMES = ["", "", "Note: ", "In short, ", "According to the documentation, ", "Remember that ", "FYI ",
          "From the team wiki: ", "Reminder: ", "As discussed in the review, "]
NAMES = ["billing", "search", "ingest", "reports", "auth", "payments", "catalog", "alerts", "gateway", "ledger"]
CHUNK = 2000

_notes: list[tuple[str, str]] = []
_by_topic: dict[str, list[str]] = {}
_embedder = None


def make_text(index: int, seed: int) -> str:
    """Entry `index`: a note with word dropout and a framing phrase, often a second sentence
    from the same topic and a service name with a ticket number (real lexical structure,
    not uniform noise)."""
    rng = random.Random(seed * 1_000_003 + index)
    topic, base = _notes[rng.randrange(len(_notes))]
    words = base.split()
    keep = [word for word in words if rng.random() > rng.choice((0.05, 0.15, 0.3))] or words
    parts = [rng.choice(FRAMES) + " ".join(keep)]
    if rng.random() < 0.6:
        other = rng.choice(_by_topic[topic]).split()
        start = rng.randrange(max(1, len(other) - 8))
        parts.append(" ".join(other[start:start + rng.randint(6, 16)]))
    if rng.random() < 0.5:
        parts.append(f"Seen in the {rng.choice(NAMES)} service (ticket {rng.randint(100, 99999)}, #{index}).")
    return " ".join(parts)


def init_worker(notes: list[tuple[str, str]], dimensions: int) -> None:
    from memory.embedders import HashingEmbedder

    global _embedder
    _notes[:] = notes
    _by_topic.clear()
    for topic, text in notes:
        _by_topic.setdefault(topic, []).append(text)
    _embedder = HashingEmbedder(dimensions)


def make_rows(task: tuple[int, int, int]) -> list[tuple[str, str, str]]:
    """(text, sha256, vector literal) of entries start..stop."""
    start, stop, seed = task
    rows = []
    for index in range(start, stop):
        text = make_text(index, seed)
        vector = _embedder.embed_one(text)
        literal = "[" + ",".join(f"{value:.7g}" for value in vector) + "]"
        rows.append((text, hashlib.sha256(text.encode()).hexdigest(), literal))
    return rows


def _tasks(start: int, stop: int, seed: int) -> Iterator[tuple[int, int, int]]:
    for low in range(start, stop, CHUNK):
        yield low, min(stop, low + CHUNK), seed


def copy_entries(cursor, *, start: int, stop: int, seed: int, notes: list[tuple[str, str]], dimensions: int,
                 embedder_name: str, processes: int) -> dict:
    """COPY entries start..stop into memory_memoryentry through a psycopg cursor."""
    started = time.perf_counter()
    context = multiprocessing.get_context("fork")
    with context.Pool(processes, initializer=init_worker, initargs=(notes, dimensions)) as pool, cursor.copy(
        "COPY memory_memoryentry (content, content_hash, embedding, embedder, kind, metadata, created_at) FROM STDIN"
    ) as copy:
        # imap keeps at most a few chunks in flight: memory stays flat at any size.
        for rows in pool.imap(make_rows, _tasks(start, stop, seed)):
            for text, digest, literal in rows:
                copy.write_row([text, digest, literal, embedder_name, "document", "{}", "2025-01-01T00:00:00Z"])
    seconds = time.perf_counter() - started
    return {"rows": stop - start, "seconds": round(seconds, 1), "rows_per_second": round((stop - start) / seconds)}


def sample_texts(indexes: list[int], seed: int, notes: list[tuple[str, str]]) -> list[str]:
    init_worker(notes, 8)
    return [make_text(index, seed) for index in indexes]
