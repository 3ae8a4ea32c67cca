"""Memory search benchmark: prints ONE JSON object.

    .venv/bin/python bench/memory_search.py            # 100,000 entries x 384 dimensions
    .venv/bin/python bench/memory_search.py --n 10000  # quick check

Runs against a dedicated database `agentos_bench_memory` on the configured PostgreSQL server
(created and migrated on first use; never the application's data).

1. Quality: the sample knowledge base alone, 50 labelled questions (bench/memory_quality.py):
   hit@1, hit@5 and MRR for vector search and hybrid search (two full-text variants).
2. Scale: N texts made from the knowledge-base sentences with variations (word dropout,
   sentences mixed from notes of the same topic, framing phrases, random numbers and
   names), embedded with the configured embedder: real lexical structure, not uniform
   noise. COPY throughput, HNSW build time (maintenance_work_mem = 1GB), then per
   hnsw.ef_search: top-10 latency p50/p95 of memory_search (query embedding included) and
   recall@10 against exact search, for vector and hybrid.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentos.settings")

BENCH_DB = "agentos_bench_memory"  # its own: the other benchmarks drop and recreate agentos_bench
FRAMES = ["", "", "Note: ", "In short, ", "According to the documentation, ", "Remember that ", "FYI ",
          "From the team wiki: ", "Reminder: ", "As discussed in the review, "]
NAMES = ["billing", "search", "ingest", "reports", "auth", "payments", "catalog", "alerts", "gateway", "ledger"]


def setup_django() -> None:
    import django
    import psycopg
    from django.conf import settings

    django.setup()
    db = settings.DATABASES["default"]
    params = {"host": db["HOST"], "port": db["PORT"], "user": db["USER"], "password": db["PASSWORD"]}
    with psycopg.connect(dbname=db["NAME"], autocommit=True, **params) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone():
            conn.execute(f"CREATE DATABASE {BENCH_DB}")
    # Before the first connection is opened: every query below goes to the bench database.
    db["NAME"] = BENCH_DB
    from django.core.management import call_command

    call_command("migrate", "memory", verbosity=0)


def make_texts(notes: list[tuple[str, str]], n: int, seed: int) -> list[str]:
    """N variations of the notes: (topic, text) pairs in, texts out."""
    rng = random.Random(seed)
    by_topic: dict[str, list[str]] = {}
    for topic, text in notes:
        by_topic.setdefault(topic, []).append(text)
    texts = []
    for index in range(n):
        topic, base = notes[rng.randrange(len(notes))]
        words = base.split()
        keep = [word for word in words if rng.random() > rng.choice((0.05, 0.15, 0.3))] or words
        parts = [rng.choice(FRAMES) + " ".join(keep)]
        if rng.random() < 0.6:  # a second sentence from the same topic
            other = rng.choice(by_topic[topic]).split()
            start = rng.randrange(max(1, len(other) - 8))
            parts.append(" ".join(other[start:start + rng.randint(6, 16)]))
        if rng.random() < 0.5:
            parts.append(f"Seen in the {rng.choice(NAMES)} service (ticket {rng.randint(100, 99999)}, #{index}).")
        texts.append(" ".join(parts))
    return texts


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def quality(questions: list[tuple[str, str]]) -> dict:
    from memory.defaults import load_defaults
    from memory.models import MemoryEntry
    from memory.services import memory_search

    MemoryEntry.objects.all().delete()
    load_defaults()
    contents = list(MemoryEntry.objects.values_list("id", "content"))
    targets = []
    for question, marker in questions:
        matching = [entry_id for entry_id, content in contents if marker in content]
        assert len(matching) == 1, f"marker {marker!r} matches {len(matching)} notes"
        targets.append((question, matching[0]))
    # "hybrid" is what memory_search does by default (websearch_to_tsquery: every term must
    # match); "hybrid_any_term" ORs the query's lexemes instead.
    variants = {"vector": {"mode": "vector"}, "hybrid": {"mode": "hybrid", "fts": "strict"},
                "hybrid_any_term": {"mode": "hybrid", "fts": "any"}}
    report = {"entries": len(contents), "questions": len(targets)}
    for name, options in variants.items():
        ranks = []
        for question, target in targets:
            ids = [hit.id for hit in memory_search(query=question, owner=None, k=10, **options)]
            ranks.append(ids.index(target) + 1 if target in ids else None)
        report[name] = {
            "hit_at_1": round(sum(rank == 1 for rank in ranks) / len(ranks), 3),
            "hit_at_5": round(sum(rank is not None and rank <= 5 for rank in ranks) / len(ranks), 3),
            "mrr_at_10": round(sum(1 / rank for rank in ranks if rank) / len(ranks), 3),
        }
    return report


def load(texts: list[str], embedder) -> dict:
    from django.db import connection

    from memory.models import HNSW_INDEX_NAME
    from memory.services import vector_literal

    started = time.perf_counter()
    vectors = []
    for start in range(0, len(texts), 1000):
        vectors += embedder.embed(texts[start:start + 1000])
    embed_seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE memory_memoryentry")
        # Bulk load first, index afterwards: far faster than maintaining HNSW per row.
        cursor.execute(f'DROP INDEX IF EXISTS "{HNSW_INDEX_NAME}"')
        cursor.execute('DROP INDEX IF EXISTS "memory_entry_search_gin"')
    connection.ensure_connection()
    raw = connection.connection  # the psycopg connection under Django's wrapper
    started = time.perf_counter()
    with raw.cursor() as cursor, cursor.copy(
        "COPY memory_memoryentry (content, content_hash, embedding, embedder, kind, metadata, created_at) "
        "FROM STDIN"
    ) as copy:
        for text, vector in zip(texts, vectors, strict=True):
            copy.write_row([text, hashlib.sha256(text.encode()).hexdigest(), vector_literal(vector),
                            embedder.name, "document", "{}", "2025-01-01T00:00:00Z"])
    if not raw.autocommit:
        raw.commit()
    copy_seconds = time.perf_counter() - started
    return {"embed_seconds": round(embed_seconds, 1), "copy_seconds": round(copy_seconds, 2),
            "insert_rows_per_second": round(len(texts) / copy_seconds)}


def build_indexes(m: int, ef_construction: int) -> dict:
    from django.db import connection

    from memory.models import HNSW_INDEX_NAME

    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        started = time.perf_counter()
        cursor.execute(f'CREATE INDEX "{HNSW_INDEX_NAME}" ON memory_memoryentry USING hnsw '
                       f"(embedding vector_cosine_ops) WITH (m = {m}, ef_construction = {ef_construction})")
        hnsw_seconds = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute('CREATE INDEX "memory_entry_search_gin" ON memory_memoryentry USING gin (search_vector)')
        gin_seconds = time.perf_counter() - started
        cursor.execute("RESET maintenance_work_mem")
        cursor.execute("VACUUM ANALYZE memory_memoryentry")
        cursor.execute(f"SELECT pg_relation_size('{HNSW_INDEX_NAME}')")
        size = cursor.fetchone()[0]
    return {"m": m, "ef_construction": ef_construction, "hnsw_build_seconds": round(hnsw_seconds, 1),
            "hnsw_size_mb": round(size / 2**20, 1), "gin_build_seconds": round(gin_seconds, 1)}


def exact_results(queries: list[str]) -> dict:
    """Top-10 ids per query by exact (sequential scan) search, for vector and hybrid mode:
    the same statement as memory_search with the HNSW index bypassed."""
    from memory.services import memory_search

    exact: dict = {"vector": {}, "hybrid": {}, "tenth_distance": {}}
    for query in queries:
        hits = memory_search(query=query, owner=None, k=10, mode="vector", exact=True)
        exact["vector"][query] = {hit.id for hit in hits}
        exact["tenth_distance"][query] = 1 - hits[-1].score if hits else 2.0
        exact["hybrid"][query] = {hit.id for hit in memory_search(query=query, owner=None, k=10, mode="hybrid",
                                                                   exact=True)}
    return exact


def measure(queries: list[str], ef_search: int, exact: dict) -> dict:
    from django.test import override_settings

    from memory.services import memory_search

    report = {"ef_search": ef_search}
    with override_settings(MEMORY_HNSW_EF_SEARCH=ef_search, MEMORY_HNSW_EF_SEARCH_HYBRID=ef_search):
        for mode in ("vector", "hybrid"):
            for query in queries[:10]:  # warm the cache and the connection
                memory_search(query=query, owner=None, k=10, mode=mode)
            latencies, recalls, tie_recalls = [], [], []
            for query in queries:
                started = time.perf_counter()
                hits = memory_search(query=query, owner=None, k=10, mode=mode)
                latencies.append((time.perf_counter() - started) * 1000)
                truth = exact[mode][query]
                recalls.append(len({hit.id for hit in hits} & truth) / max(1, len(truth)))
                if mode == "vector":
                    # ann-benchmarks' definition: a hit counts when it is no farther than the
                    # 10th true neighbour, so ties at the 10th place are not counted as misses.
                    limit = exact["tenth_distance"][query] + 1e-5
                    tie_recalls.append(sum(1 - hit.score <= limit for hit in hits) / max(1, len(truth)))
            report[mode] = {"p50_ms": round(percentile(latencies, 0.5), 2),
                            "p95_ms": round(percentile(latencies, 0.95), 2),
                            "recall_at_10": round(statistics.mean(recalls), 4)}
            if tie_recalls:
                report[mode]["recall_at_10_distance_ties"] = round(statistics.mean(tie_recalls), 4)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="entries (default 100000)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--m", type=int, default=None, help="HNSW m (default: the migration's)")
    parser.add_argument("--ef-construction", type=int, default=None)
    parser.add_argument("--ef-search", default="40,64,100,200", help="comma-separated hnsw.ef_search values")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", action="store_true",
                        help="keep the rows of a previous run with the same --n and --seed; only rebuild the index")
    args = parser.parse_args()
    setup_django()
    from bench.memory_quality import QUESTIONS
    from memory.defaults import knowledge_chunks
    from memory.embedders import get_embedder
    from memory.models import HNSW_EF_CONSTRUCTION, HNSW_INDEX_NAME, HNSW_M

    embedder = get_embedder()
    result: dict = {"benchmark": "memory_search", "n": args.n, "embedder": embedder.name,
                    "dimensions": embedder.dimensions, "load_average_at_start": os.getloadavg()}
    from memory.models import MemoryEntry

    reuse = args.reuse and MemoryEntry.objects.filter(embedder=embedder.name).count() == args.n
    if not reuse:
        result["quality"] = quality(QUESTIONS)
    notes = [(chunk.metadata.get("title", ""), chunk.content) for chunk in knowledge_chunks()]
    texts = make_texts(notes, args.n, args.seed)
    rng = random.Random(args.seed + 1)
    # Queries: the labelled questions plus noisy fragments of notes, as users type them.
    queries = [question for question, _ in QUESTIONS]
    while len(queries) < args.queries:
        words = [w for w in rng.choice(notes)[1].split() if rng.random() > 0.4]
        queries.append(re.sub(r"[.,;:]", "", " ".join(words[: rng.randint(3, 9)])))
    if not reuse:
        result["load"] = load(texts, embedder)
    else:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(f'DROP INDEX IF EXISTS "{HNSW_INDEX_NAME}"')
            cursor.execute('DROP INDEX IF EXISTS "memory_entry_search_gin"')
    result["index"] = build_indexes(args.m or HNSW_M, args.ef_construction or HNSW_EF_CONSTRUCTION)
    started = time.perf_counter()
    exact = exact_results(queries)
    result["exact_search_ms_mean"] = round((time.perf_counter() - started) * 1000 / len(queries), 1)
    result["by_ef_search"] = [measure(queries, int(value), exact) for value in args.ef_search.split(",")]
    result["load_average_at_end"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
