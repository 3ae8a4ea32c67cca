"""Streaming corpus for bench/memory_search.py: texts generated, embedded and COPYed in chunks.

Nothing holds the whole corpus: entry i is a pure function of (seed, i), so a chunk can be
made in any process and the 100k rows are the first 100k of the 1M. Embedding (pure
Python, the product's hashing embedder) runs in a process pool; each worker encodes its
chunk as binary COPY rows (the vector as pgvector's binary form, no float text to print or
parse), and the main process only streams those bytes into COPY.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import random
import re
import struct
import time
from collections import deque
from collections.abc import Iterator

FRAMES = ["", "", "Note: ", "In short, ", "According to the documentation, ", "Remember that ", "FYI ",
          "From the team wiki: ", "Reminder: ", "As discussed in the review, "]
NAMES = ["billing", "search", "ingest", "reports", "auth", "payments", "catalog", "alerts", "gateway", "ledger"]
PEOPLE = ["Alice", "Bob", "Chen", "Dmitri", "Emeka", "Fatima", "Giulia", "Hiro", "Ines", "Jonas", "Kavya", "Liam",
          "Mei", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tomasz", "Uma", "Viktor", "Wanjiru", "Yusuf"]
ACTIONS = ["Seen in", "Came up in", "Asked about in", "Checked for", "Noted while debugging", "Relevant to"]
CORPORA = ("mixed", "paraphrase")
CHUNK = 2000

_notes: list[tuple[str, str]] = []
_by_topic: dict[str, list[str]] = {}
_sentences: list[tuple[str, str]] = []
_sentences_by_topic: dict[str, list[str]] = {}
_corpus = "mixed"
_embedder = None


def _dropout(rng: random.Random, text: str) -> str:
    words = text.split()
    rate = rng.choice((0.05, 0.15, 0.3))
    return " ".join([word for word in words if rng.random() > rate] or words)


def make_text(index: int, seed: int) -> str:
    """Entry `index` of the configured corpus (a pure function of seed and index)."""
    rng = random.Random(seed * 1_000_003 + index)
    return (_mixed if _corpus == "mixed" else _paraphrase)(rng, index)


def _mixed(rng: random.Random, index: int) -> str:
    """One to three sentences of the sample knowledge base with word dropout, the later ones
    from the same topic or any topic, and the details of where it came up (service, person,
    date, ticket): entries that share a sentence differ in the rest, as notes do."""
    topic, first = _sentences[rng.randrange(len(_sentences))]
    parts = [_dropout(rng, first)]
    for _ in range(rng.choice((0, 1, 1, 2))):
        other = (rng.choice(_sentences_by_topic[topic]) if rng.random() < 0.5
                 else _sentences[rng.randrange(len(_sentences))][1])
        parts.append(_dropout(rng, other))
    if rng.random() < 0.3:
        rng.shuffle(parts)
    parts[0] = rng.choice(FRAMES) + parts[0]
    day = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    parts.append(f"{rng.choice(ACTIONS)} the {rng.choice(NAMES)} service by {rng.choice(PEOPLE)} on {day} "
                 f"(ticket {rng.randint(100, 99999)}, #{index}).")
    return " ".join(parts)


def _paraphrase(rng: random.Random, index: int) -> str:
    """The corpus before (kept for comparison): one note with word dropout and a framing
    phrase, often a fragment of a second note from the same topic, and half the time a
    service name with a ticket number. A million entries are then some 3,300 near-paraphrases
    of each of the 305 notes."""
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


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"(])")


def init_worker(notes: list[tuple[str, str]], dimensions: int, corpus: str = "mixed") -> None:
    from memory.embedders import HashingEmbedder

    global _embedder, _corpus
    if corpus not in CORPORA:
        raise ValueError(f"corpus must be one of {CORPORA}, got {corpus!r}")
    _corpus = corpus
    _notes[:] = notes
    _by_topic.clear()
    _sentences.clear()
    _sentences_by_topic.clear()
    for topic, text in notes:
        _by_topic.setdefault(topic, []).append(text)
        for sentence in _SENTENCE_END.split(" ".join(text.split())):
            if len(sentence.split()) >= 4:
                _sentences.append((topic, sentence))
                _sentences_by_topic.setdefault(topic, []).append(sentence)
    _embedder = HashingEmbedder(dimensions)


COLUMNS = "content, content_hash, embedding, embedder, kind, metadata, created_at"
# COPY's binary format: the file header, then per row the field count and each field as
# (int32 length, bytes); the trailer is a field count of -1.
COPY_HEADER = b"PGCOPY\n\xff\r\n\0" + struct.pack("!ii", 0, 0)
COPY_TRAILER = struct.pack("!h", -1)
# timestamptz: microseconds since 2000-01-01 UTC; 2025-01-01T00:00:00Z for every entry.
CREATED_AT = struct.pack("!iq", 8, (9132 * 86400) * 1_000_000)
_field = struct.Struct("!i").pack


def _text_field(value: str) -> bytes:
    data = value.encode()
    return _field(len(data)) + data


def make_rows(task: tuple[int, int, int, str]) -> bytes:
    """Binary COPY rows (COLUMNS) of entries start..stop."""
    start, stop, seed, embedder_name = task
    dimensions = _embedder.dimensions
    # pgvector's binary vector: int16 dimensions, int16 unused, float4 values (big-endian).
    vector_field = struct.Struct(f"!ihh{dimensions}f")
    tail = _text_field(embedder_name) + _text_field("document") + _field(3) + b"\x01{}" + CREATED_AT
    parts = []
    for index in range(start, stop):
        text = make_text(index, seed)
        data = text.encode()
        parts.append(b"\x00\x07" + _field(len(data)) + data + _field(64) + hashlib.sha256(data).hexdigest().encode()
                     + vector_field.pack(4 + 4 * dimensions, dimensions, 0, *_embedder.embed_one(text)) + tail)
    return b"".join(parts)


def _tasks(start: int, stop: int, seed: int, embedder_name: str) -> Iterator[tuple[int, int, int, str]]:
    for low in range(start, stop, CHUNK):
        yield low, min(stop, low + CHUNK), seed, embedder_name


def copy_entries(cursor, *, start: int, stop: int, seed: int, notes: list[tuple[str, str]], dimensions: int,
                 embedder_name: str, processes: int, corpus: str = "mixed") -> dict:
    """COPY entries start..stop into memory_memoryentry through a psycopg cursor."""
    started = time.perf_counter()
    context = multiprocessing.get_context("fork")
    with context.Pool(processes, initializer=init_worker, initargs=(notes, dimensions, corpus)) as pool, cursor.copy(
        f"COPY memory_memoryentry ({COLUMNS}) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.write(COPY_HEADER)
        # A few chunks in flight: memory stays flat at any size, whichever side is slower.
        pending: deque = deque()
        for task in _tasks(start, stop, seed, embedder_name):
            pending.append(pool.apply_async(make_rows, (task,)))
            if len(pending) > 2 * processes:
                copy.write(pending.popleft().get())
        while pending:
            copy.write(pending.popleft().get())
        copy.write(COPY_TRAILER)
    seconds = time.perf_counter() - started
    return {"rows": stop - start, "seconds": round(seconds, 1), "rows_per_second": round((stop - start) / seconds)}


def sample_texts(indexes: list[int], seed: int, notes: list[tuple[str, str]], corpus: str = "mixed") -> list[str]:
    init_worker(notes, 8, corpus)
    return [make_text(index, seed) for index in indexes]
