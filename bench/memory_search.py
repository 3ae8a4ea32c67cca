"""Memory search benchmark at 100k and 1M entries in one run: prints ONE JSON object.

    .venv/bin/python bench/memory_search.py                 # 100,000 then 1,000,000 x 384
    .venv/bin/python bench/memory_search.py --n 10000       # one size, quick check
    .venv/bin/python bench/memory_search.py --out bench/results/memory_search.json

Runs in its own database `agentos_bench_memory` (dropped at the end unless --keep). With
no DATABASE_URL and no AGENTOS_VAR_DIR it starts its own embedded PostgreSQL under
var/bench-memory (stopped at the end) so it never competes with the test servers' data.

1. Quality: the sample knowledge base alone, 50 labelled questions (bench/memory_quality.py):
   hit@1, hit@5 and MRR for vector and hybrid search.
2. Scale, per size (the larger size appends to the smaller one's rows): entries generated
   and embedded in a process pool and streamed into binary COPY (bench/memory_corpus.py;
   nothing holds the corpus in memory), the GIN index, then the HNSW index through the
   product's memory.indexing.index_build (build plan, wall time, the PostgreSQL server's
   CPU seconds when it is this bench's own server, size). At the first size other build
   parameters are compared (the earlier m 24 / ef_construction 128 and pgvector's defaults
   m 16 / ef_construction 64), same queries, raw top-10 SQL. Then per hnsw.ef_search:
   top-10 latency p50/p95 of memory_search (query embedding included) and recall@10
   against exact search, for vector and hybrid.

The corpus (--corpus). `mixed` (the default since 2026-12-03): each entry is one to three
sentences of the 305-note sample knowledge base with word dropout, the later ones from the
same topic or any topic, plus where it came up (service, person, date, ticket number).
`paraphrase` (before): each entry is one note with word dropout, a framing phrase, often a
fragment of a same-topic note and half the time a ticket; a million entries are then about
3,300 near-paraphrases of each note, and every query's exact top 10 sits inside such a
cluster. HNSW's graph links each entry to its cluster's other members, and the search
stays in the cluster it enters: recall@10 at a million fell to 0.69-0.84 there. Neither
corpus is real data; `mixed` is closer to a memory of many distinct notes, and its figures
say how the index does on that. The queries are the same in both: the labelled
natural-language questions of bench/memory_quality.py, which sit far from every entry (the
hashing embedder is lexical), so the 10th and the 50th exact neighbour differ by only
about 9 % in distance — a hard case for any approximate index.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentos.settings")
if not os.environ.get("DATABASE_URL") and not os.environ.get("AGENTOS_VAR_DIR"):
    os.environ["AGENTOS_VAR_DIR"] = str(ROOT / "var" / "bench-memory")

BENCH_DB = "agentos_bench_memory"  # its own: the other benchmarks drop and recreate agentos_bench
TABLE = "memory_memoryentry"
GIN = "memory_entry_search_gin"


def server_params() -> dict:
    from django.conf import settings

    db = settings.DATABASES["default"]
    return {"host": db["HOST"], "port": db["PORT"], "user": db["USER"], "password": db["PASSWORD"]}


def setup_django() -> str:
    import django
    import psycopg
    from django.conf import settings

    django.setup()
    db = settings.DATABASES["default"]
    original = db["NAME"]
    with psycopg.connect(dbname=original, autocommit=True, **server_params()) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    # Before the first connection is opened: every query below goes to the bench database.
    db["NAME"] = BENCH_DB
    from django.core.management import call_command

    call_command("migrate", "memory", verbosity=0)
    return original


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
    report = {"entries": len(contents), "questions": len(targets)}
    for mode in ("vector", "hybrid"):
        ranks = []
        for question, target in targets:
            ids = [hit.id for hit in memory_search(query=question, owner=None, k=10, mode=mode)]
            ranks.append(ids.index(target) + 1 if target in ids else None)
        report[mode] = {
            "hit_at_1": round(sum(rank == 1 for rank in ranks) / len(ranks), 3),
            "hit_at_5": round(sum(rank is not None and rank <= 5 for rank in ranks) / len(ranks), 3),
            "mrr_at_10": round(sum(1 / rank for rank in ranks if rank) / len(ranks), 3),
        }
    return report


def load(start: int, stop: int, args, notes, embedder) -> dict:
    from django.db import connection

    from bench.memory_corpus import copy_entries
    from memory.indexing import index_drop

    index_drop()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP INDEX IF EXISTS "{GIN}"')
    connection.ensure_connection()
    raw = connection.connection  # psycopg's connection under Django's wrapper
    with raw.cursor() as cursor:
        report = copy_entries(cursor, start=start, stop=stop, seed=args.seed, notes=notes,
                              dimensions=embedder.dimensions, embedder_name=embedder.name, processes=args.processes,
                              corpus=args.corpus)
    if not raw.autocommit:
        raw.commit()
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute(f'CREATE INDEX "{GIN}" ON {TABLE} USING gin (search_vector)')
        cursor.execute("RESET maintenance_work_mem")
        report["gin_build_seconds"] = round(time.perf_counter() - started, 1)
        cursor.execute(f"VACUUM ANALYZE {TABLE}")
        cursor.execute(f"SELECT pg_total_relation_size('{TABLE}'), pg_relation_size('{GIN}')")
        total, gin = cursor.fetchone()
    report["table_with_indexes_mb_before_hnsw"] = round(total / 2**20)
    report["gin_mb"] = round(gin / 2**20)
    return report


def server_cpu_seconds() -> float | None:
    """CPU seconds of this bench's own PostgreSQL server so far (the postmaster, its live
    backends and its exited children such as parallel build workers), or None when the
    server is not the bench's own (another machine, or not readable)."""
    if os.environ.get("AGENTOS_VAR_DIR") != str(ROOT / "var" / "bench-memory"):
        return None
    try:
        postmaster = int((ROOT / "var" / "bench-memory" / "postgres" / "pgdata" / "postmaster.pid")
                         .read_text().split()[0])
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                data = stat.read_text()
            except OSError:
                continue
            fields = data[data.rindex(")") + 2:].split()
            pid, parent = int(stat.parent.name), int(fields[1])
            if pid == postmaster:
                total += sum(int(value) for value in fields[11:15])  # its own and its reaped children's
            elif parent == postmaster:
                total += int(fields[11]) + int(fields[12])
        return total / tick
    except (OSError, ValueError, IndexError):
        return None


def build_hnsw() -> dict:
    from django.db import connection

    from memory.indexing import index_build

    phases: dict[str, float] = {}
    started = time.perf_counter()
    cpu_before = server_cpu_seconds()

    def seen(step) -> None:
        phases.setdefault(step.phase, round(time.perf_counter() - started, 1))

    report = index_build(progress=seen)
    cpu_after = server_cpu_seconds()
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {TABLE}")
        cursor.execute(f"SELECT pg_total_relation_size('{TABLE}')")
        total = cursor.fetchone()[0]
    plan = report.plan
    from memory.models import HNSW_EF_CONSTRUCTION, HNSW_M

    return {"rows": plan.rows, "m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION,
            "build_seconds": round(report.seconds, 1),
            "build_server_cpu_seconds": None if cpu_before is None or cpu_after is None
            else round(cpu_after - cpu_before, 1),
            "load_average_after_build": [round(v, 2) for v in os.getloadavg()],
            "index_mb": round(report.index_bytes / 2**20),
            "maintenance_work_mem_mb": plan.maintenance_work_mem_mb, "parallel_workers": plan.parallel_workers,
            "graph_spilled_to_disk": report.spilled, "phase_first_seen_at_seconds": phases,
            "table_with_indexes_mb": round(total / 2**20)}


HALFVEC = "((embedding::halfvec({d})) halfvec_cosine_ops) WITH (m = %d, ef_construction = %d)"
HALFVEC_ORDER = "embedding::halfvec({d}) <=> %s::halfvec({d})"
VARIANTS = {  # name: (index definition, ORDER BY expression with one %s vector parameter)
    "halfvec_m24_efc128": (HALFVEC % (24, 128), HALFVEC_ORDER),  # the build parameters before
    "halfvec_m16_efc64": (HALFVEC % (16, 64), HALFVEC_ORDER),  # pgvector's defaults
}


def product_name() -> str:
    from memory.models import HNSW_EF_CONSTRUCTION, HNSW_M

    return f"halfvec_m{HNSW_M}_efc{HNSW_EF_CONSTRUCTION}"
PRODUCT_ORDER = "embedding::halfvec({d}) <=> %s::halfvec({d})"


def _raw_curve(cursor, order: str, vectors: list[str], exact: list[set], ef_values: list[int]) -> list[dict]:
    curve = []
    for ef in ef_values:
        cursor.execute(f"SET hnsw.ef_search = {int(ef)}")
        latencies, recalls = [], []
        for vector, truth in zip(vectors, exact, strict=True):
            started = time.perf_counter()
            cursor.execute(f"SELECT id FROM {TABLE} ORDER BY {order} LIMIT 10", [vector])
            ids = {row[0] for row in cursor.fetchall()}
            latencies.append((time.perf_counter() - started) * 1000)
            recalls.append(len(ids & truth) / 10)
        curve.append({"ef_search": ef, "p50_ms": round(percentile(latencies, 0.5), 2),
                      "p95_ms": round(percentile(latencies, 0.95), 2),
                      "recall_at_10": round(statistics.mean(recalls), 4)})
    cursor.execute("RESET hnsw.ef_search")
    return curve


def _raw_exact(cursor, vectors: list[str]) -> list[set]:
    exact = []
    for vector in vectors:
        cursor.execute(f"SELECT id FROM {TABLE} ORDER BY (embedding <=> %s::vector) + 0, id LIMIT 10", [vector])
        exact.append({row[0] for row in cursor.fetchall()})
    return exact


def compare_variants(vectors: list[str], dimensions: int, rows: int, ef_values: list[int]) -> tuple[dict, list]:
    """Other build parameters than the product's index over the same rows, each built alone
    before the product's: build time, size, and raw top-10 recall/latency against the exact
    float order."""
    from django.db import connection

    from memory.indexing import build_plan

    report = {}
    with connection.cursor() as cursor:
        exact = _raw_exact(cursor, vectors)
        for name, (definition, order) in VARIANTS.items():
            # float: twice the bytes per vector
            plan = build_plan(rows=rows, dimensions=dimensions * (2 if name.startswith("float") else 1))
            cursor.execute(f"SET maintenance_work_mem = '{plan.maintenance_work_mem_mb}MB'")
            cursor.execute(f"SET max_parallel_maintenance_workers = {plan.parallel_workers}")
            started = time.perf_counter()
            cursor.execute(f"CREATE INDEX bench_variant ON {TABLE} USING hnsw {definition.format(d=dimensions)}")
            seconds = time.perf_counter() - started
            cursor.execute("RESET maintenance_work_mem")
            cursor.execute("RESET max_parallel_maintenance_workers")
            cursor.execute("SELECT pg_relation_size('bench_variant')")
            report[name] = {"build_seconds": round(seconds, 1), "index_mb": round(cursor.fetchone()[0] / 2**20),
                            "by_ef_search": _raw_curve(cursor, order.format(d=dimensions), vectors, exact, ef_values)}
            cursor.execute("DROP INDEX bench_variant")
    return report, exact


def exact_results(queries: list[str]) -> dict:
    """Top-10 ids per query by exact (sequential scan) search, for vector and hybrid mode:
    the same statement as memory_search with the HNSW index bypassed and, in hybrid mode,
    every full-text match ranked."""
    from django.test import override_settings

    from memory.services import memory_search

    exact: dict = {"vector": {}, "hybrid": {}, "tenth_distance": {}}
    for query in queries:
        for mode in ("vector", "hybrid"):
            # Every full-text match ranked: the truth includes what MEMORY_FTS_RANK_LIMIT costs.
            with override_settings(MEMORY_FTS_RANK_LIMIT=10**9):
                hits = memory_search(query=query, owner=None, k=10, mode=mode, exact=True)
            exact[mode][query] = {hit.id for hit in hits}
            if mode == "vector":
                exact["tenth_distance"][query] = 1 - hits[-1].score if hits else 2.0
    return exact


def measure(queries: list[str], ef_search: int, passes: int, answers: dict) -> dict:
    """Latency p50/p95 per mode; the hits of the first pass go to `answers` for add_recall."""
    from django.test import override_settings

    from memory.services import memory_search

    report: dict = {"ef_search": ef_search}
    with override_settings(MEMORY_HNSW_EF_SEARCH=ef_search, MEMORY_HNSW_EF_SEARCH_HYBRID=ef_search):
        for mode in ("vector", "hybrid"):
            for query in queries[:10]:  # warm the connection and the settings
                memory_search(query=query, owner=None, k=10, mode=mode)
            latencies = []
            for attempt in range(passes):
                for query in queries:
                    started = time.perf_counter()
                    hits = memory_search(query=query, owner=None, k=10, mode=mode)
                    latencies.append((time.perf_counter() - started) * 1000)
                    if attempt == 0:
                        answers[ef_search, mode, query] = [(hit.id, 1 - hit.score) for hit in hits]
            report[mode] = {"p50_ms": round(percentile(latencies, 0.5), 2),
                            "p95_ms": round(percentile(latencies, 0.95), 2)}
    return report


def measure_rank_limits(queries: list[str], ef_search: int, limits: list[int], passes: int) -> list[dict]:
    """Hybrid latency and top-10 hits per MEMORY_FTS_RANK_LIMIT at one ef_search."""
    from django.test import override_settings

    from memory.services import memory_search

    points = []
    for limit in limits:
        with override_settings(MEMORY_HNSW_EF_SEARCH_HYBRID=ef_search, MEMORY_FTS_RANK_LIMIT=limit):
            latencies, hits = [], {}
            for _attempt in range(passes):
                for query in queries:
                    started = time.perf_counter()
                    found = memory_search(query=query, owner=None, k=10, mode="hybrid")
                    latencies.append((time.perf_counter() - started) * 1000)
                    hits[query] = {hit.id for hit in found}
        points.append({"fts_rank_limit": limit, "p50_ms": round(percentile(latencies, 0.5), 2),
                       "p95_ms": round(percentile(latencies, 0.95), 2), "hits": hits})
    return points


def add_recall(points: list[dict], answers: dict, exact: dict) -> None:
    for point in points:
        for mode in ("vector", "hybrid"):
            recalls, tie_recalls = [], []
            for (ef, answer_mode, query), hits in answers.items():
                if ef != point["ef_search"] or answer_mode != mode:
                    continue
                truth = exact[mode][query]
                recalls.append(len({hit_id for hit_id, _ in hits} & truth) / max(1, len(truth)))
                if mode == "vector":
                    # ann-benchmarks' definition: a hit no farther than the 10th true
                    # neighbour counts (generated entries tie at equal distances).
                    limit = exact["tenth_distance"][query] + 1e-5
                    tie_recalls.append(sum(distance <= limit for _, distance in hits) / max(1, len(truth)))
            point[mode]["recall_at_10"] = round(statistics.mean(recalls), 4)
            if tie_recalls:
                point[mode]["recall_at_10_distance_ties"] = round(statistics.mean(tie_recalls), 4)


def make_queries(notes: list[tuple[str, str]], count: int, seed: int) -> list[str]:
    from bench.memory_quality import QUESTIONS

    rng = random.Random(seed + 1)
    # The labelled questions plus noisy fragments of notes, as users type them.
    queries = [question for question, _ in QUESTIONS][:count]
    while len(queries) < count:
        words = [w for w in rng.choice(notes)[1].split() if rng.random() > 0.4]
        queries.append(re.sub(r"[.,;:]", "", " ".join(words[: rng.randint(3, 9)])))
    return queries


def scale(size: int, loaded: int, args, notes, embedder, queries: list[str], ef_values: list[int],
          compare: bool, save) -> dict:
    """One size; `save()` writes the figures so far after each stage."""
    from django.db import connection

    from memory.services import vector_literal

    report: dict = {"n": size, "load_average_at_start": [round(v, 2) for v in os.getloadavg()]}
    save(report)
    report["load"] = load(loaded, size, args, notes, embedder)
    save(report)
    if compare:
        vectors = [vector_literal(vector) for vector in embedder.embed(queries)]
        report["index_comparison"], raw_exact = compare_variants(vectors, embedder.dimensions, size, ef_values)
        save(report)
    report["hnsw"] = build_hnsw()
    save(report)
    if compare:
        with connection.cursor() as cursor:
            report["index_comparison"][product_name()] = {
                "build_seconds": report["hnsw"]["build_seconds"], "index_mb": report["hnsw"]["index_mb"],
                "by_ef_search": _raw_curve(cursor, PRODUCT_ORDER.format(d=embedder.dimensions), vectors, raw_exact,
                                           ef_values)}
    # The depth the defaults choose at this size (MEMORY_HNSW_EF_SEARCH 0: sized to the table).
    from memory.services import default_ef_search, reset_search_caches

    reset_search_caches()
    report["default_ef_search"] = default_ef_search()
    ef_values = sorted({*ef_values, report["default_ef_search"]})
    # Latency first (what a search returns is kept), recall once the exact answers are known.
    answers: dict = {}
    report["by_ef_search"] = [measure(queries, ef, args.passes, answers) for ef in ef_values]
    for point in report["by_ef_search"]:
        point["default"] = point["ef_search"] == report["default_ef_search"]
    rank_limits = measure_rank_limits(queries, report["default_ef_search"], [250, 500, 1000, 4000, 10**9],
                                      args.passes)
    save(report)
    started = time.perf_counter()
    exact = exact_results(queries)
    report["exact_search_ms_mean"] = round((time.perf_counter() - started) * 1000 / (2 * len(queries)), 1)
    add_recall(report["by_ef_search"], answers, exact)
    report["hybrid_by_fts_rank_limit"] = rank_limits
    for point in rank_limits:
        hits = point.pop("hits")
        point["recall_at_10"] = round(statistics.mean(
            len(hits[query] & exact["hybrid"][query]) / max(1, len(exact["hybrid"][query])) for query in queries), 4)
    report["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    save(report)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated entry counts, ascending")
    parser.add_argument("--n", type=int, default=None, help="one size only (overrides --sizes)")
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--passes", type=int, default=4, help="latency samples per query and ef_search")
    parser.add_argument("--ef-search", default="64,100,200,300,400,800", help="comma-separated hnsw.ef_search values")
    parser.add_argument("--processes", type=int, default=2, help="embedding processes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--corpus", default="mixed", choices=("mixed", "paraphrase"),
                        help="generated entries (bench/memory_corpus.py): mixed sentences with details, or the "
                             "earlier near-paraphrases of single notes")
    parser.add_argument("--out", help="also write the JSON to this file")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    sizes = [args.n] if args.n else sorted(int(size) for size in args.sizes.split(","))
    ef_values = [int(value) for value in args.ef_search.split(",")]
    started = time.perf_counter()
    original = setup_django()
    from django.conf import settings

    from bench.memory_quality import QUESTIONS
    from memory.defaults import knowledge_chunks
    from memory.embedders import get_embedder

    embedder = get_embedder()
    result: dict = {"benchmark": "memory_search", "sizes": sizes, "embedder": embedder.name,
                    "dimensions": embedder.dimensions, "cpus": os.cpu_count(), "corpus": args.corpus,
                    "queries": args.queries,
                    "latency_samples_per_point": args.queries * args.passes,
                    "settings": {"MEMORY_INDEX_BUILD_MAX_MEMORY_MB": settings.MEMORY_INDEX_BUILD_MAX_MEMORY_MB,
                                 "MEMORY_INDEX_BUILD_WORKERS": settings.MEMORY_INDEX_BUILD_WORKERS,
                                 "MEMORY_HNSW_ITERATIVE_SCAN": settings.MEMORY_HNSW_ITERATIVE_SCAN}}
    result["quality"] = quality(QUESTIONS)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {TABLE}")
    notes = [(chunk.metadata.get("title", ""), chunk.content) for chunk in knowledge_chunks()]
    queries = make_queries(notes, args.queries, args.seed)
    result["by_size"] = []
    loaded = 0

    def save(stage: dict) -> None:
        if not result["by_size"] or result["by_size"][-1] is not stage:
            result["by_size"].append(stage)
        result["total_seconds"] = round(time.perf_counter() - started)
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=2) + "\n")

    for position, size in enumerate(sizes):
        scale(size, loaded, args, notes, embedder, queries, ef_values, compare=position == 0, save=save)
        loaded = size
        print(json.dumps(result["by_size"][-1]), file=sys.stderr, flush=True)
    save(result["by_size"][-1])
    print(json.dumps(result, indent=2))
    cleanup(original, keep=args.keep)


def cleanup(original: str, *, keep: bool) -> None:
    import psycopg
    from django.db import connections

    from agentos import embedded

    connections.close_all()
    if not keep:
        with psycopg.connect(dbname=original, autocommit=True, **server_params()) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    if os.environ.get("AGENTOS_VAR_DIR") == str(ROOT / "var" / "bench-memory"):
        embedded.stop_all()
        if not keep:  # its own server: the data directory holds gigabytes after a 1M run
            shutil.rmtree(ROOT / "var" / "bench-memory", ignore_errors=True)


if __name__ == "__main__":
    main()
