"""Build the HNSW index of memory entries in one pass, with settings sized to the data.

Inserting a large import row by row into an HNSW index is slow (every row walks the graph
and rewrites its neighbours' pages), so a bulk import drops the index, loads the rows and
then builds the index once (``index_build``). pgvector builds fast while the whole graph
fits in ``maintenance_work_mem``; once it does not, it goes on page by page on disk and a
build that took minutes takes hours. ``build_plan`` sizes that memory from the entry count
and dimensions (capped by MEMORY_INDEX_BUILD_MAX_MEMORY_MB) and sets the parallel workers.

The index holds half-precision copies of the vectors (``embedding::halfvec(d)``): half the
size of a float index for the same recall (bench/memory_search.py), so twice as many
entries fit in memory, while the table keeps full precision for exact re-ranking.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, connections

from memory.models import HNSW_EF_CONSTRUCTION, HNSW_INDEX_NAME, HNSW_M, MemoryEntry

TABLE = MemoryEntry._meta.db_table
MB = 2**20
# Bytes per entry of pgvector's in-memory graph besides the vector: the element, its
# layer-0 neighbour list (2 * m candidates) and the upper layers (about 1/m of entries).
# Measured with build notices ("graph no longer fits") at m 24: see docs/memory.md.
# At m 16 the same estimate held a million entries without a spill (bench/memory_search.py).
_GRAPH_BYTES_PER_NEIGHBOUR = 16
_ELEMENT_OVERHEAD = 200
MIN_BUILD_MEMORY_MB = 64


@dataclass(frozen=True)
class BuildPlan:
    rows: int
    dimensions: int
    maintenance_work_mem_mb: int
    parallel_workers: int
    # False when the cap is below the estimated graph: the build will spill and be slow.
    fits_in_memory: bool


@dataclass(frozen=True)
class BuildProgress:
    phase: str
    done: int
    total: int


@dataclass(frozen=True)
class BuildReport:
    plan: BuildPlan
    seconds: float
    index_bytes: int
    # pgvector's notice when the graph outgrew maintenance_work_mem during the build.
    spilled: bool


def index_sql(dimensions: int) -> str:
    """The CREATE INDEX statement of the model's HNSW index (same definition as the migration)."""
    return (
        f'CREATE INDEX "{HNSW_INDEX_NAME}" ON "{TABLE}" USING hnsw '
        f'(("embedding"::halfvec({int(dimensions)})) halfvec_cosine_ops) '
        f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
    )


def graph_bytes(*, rows: int, dimensions: int, m: int = HNSW_M) -> int:
    """Estimated memory of pgvector's build graph for `rows` half-precision vectors."""
    vector = 2 * dimensions + 8
    neighbours = 2 * m * _GRAPH_BYTES_PER_NEIGHBOUR
    return rows * (vector + neighbours + neighbours // m + _ELEMENT_OVERHEAD)


def build_plan(*, rows: int, dimensions: int) -> BuildPlan:
    """maintenance_work_mem for the graph plus 25 % headroom, within [64 MB, the cap]."""
    wanted = math.ceil(graph_bytes(rows=rows, dimensions=dimensions) * 1.25 / MB)
    cap = settings.MEMORY_INDEX_BUILD_MAX_MEMORY_MB
    return BuildPlan(
        rows=rows,
        dimensions=dimensions,
        maintenance_work_mem_mb=max(MIN_BUILD_MEMORY_MB, min(wanted, cap)),
        parallel_workers=settings.MEMORY_INDEX_BUILD_WORKERS,
        fits_in_memory=wanted <= cap,
    )


def column_dimensions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT atttypmod FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'embedding'", [TABLE]
        )
        return cursor.fetchone()[0]


def index_exists() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [HNSW_INDEX_NAME])
        return cursor.fetchone() is not None


def _check_pending_constraints(cursor) -> None:
    # Inside a larger transaction, deferred foreign keys must be checked now: PostgreSQL
    # refuses to change a table's indexes with pending trigger events.
    if connection.in_atomic_block:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def index_drop() -> None:
    """Drop the HNSW index before a bulk load; searches scan exactly until index_build."""
    with connection.cursor() as cursor:
        _check_pending_constraints(cursor)
        cursor.execute(f'DROP INDEX IF EXISTS "{HNSW_INDEX_NAME}"')


def _poll_progress(pid: int, alias: str, rows: int, report: Callable[[BuildProgress], None],
                   stop: threading.Event) -> None:
    # Its own connection (Django's connections are per thread): the build holds the other.
    poller = connections.create_connection(alias)
    try:
        while not stop.wait(1.0):
            with poller.cursor() as cursor:
                cursor.execute(
                    "SELECT phase, tuples_done, tuples_total FROM pg_stat_progress_create_index WHERE pid = %s",
                    [pid],
                )
                row = cursor.fetchone()
            if row:
                # pgvector counts the tuples it loads but leaves their total at 0.
                report(BuildProgress(phase=row[0], done=row[1] or 0, total=row[2] or rows))
    finally:
        poller.close()


def index_build(*, progress: Callable[[BuildProgress], None] | None = None) -> BuildReport:
    """(Re)build the HNSW index over every embedded entry with a plan sized to them.

    Takes a SHARE lock on the table for the build: searches go on, writes wait. `progress`
    is called about once a second with pg_stat_progress_create_index's phase and counts.
    """
    dimensions = column_dimensions()
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{TABLE}" WHERE embedding IS NOT NULL')  # noqa: S608
        rows = cursor.fetchone()[0]
    plan = build_plan(rows=rows, dimensions=dimensions)
    connection.ensure_connection()
    notices: list[str] = []
    raw = connection.connection

    def on_notice(diagnostic) -> None:
        notices.append(diagnostic.message_primary or "")

    raw.add_notice_handler(on_notice)
    stop = threading.Event()
    poller = None
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SET maintenance_work_mem = '{plan.maintenance_work_mem_mb}MB'")
            cursor.execute(f"SET max_parallel_maintenance_workers = {int(plan.parallel_workers)}")
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
            if progress is not None:
                poller = threading.Thread(target=_poll_progress, args=(pid, connection.alias, rows, progress, stop),
                                          daemon=True)
                poller.start()
            _check_pending_constraints(cursor)
            started = time.perf_counter()
            cursor.execute(f'DROP INDEX IF EXISTS "{HNSW_INDEX_NAME}"')
            cursor.execute(index_sql(dimensions))
            seconds = time.perf_counter() - started
            cursor.execute("RESET maintenance_work_mem")
            cursor.execute("RESET max_parallel_maintenance_workers")
            cursor.execute("SELECT pg_relation_size(%s::regclass)", [HNSW_INDEX_NAME])
            index_bytes = cursor.fetchone()[0]
    finally:
        stop.set()
        if poller is not None:
            poller.join()
        raw.remove_notice_handler(on_notice)
    if progress is not None:
        progress(BuildProgress(phase="done", done=rows, total=rows))
    spilled = any("no longer fits" in notice for notice in notices)
    return BuildReport(plan=plan, seconds=seconds, index_bytes=index_bytes, spilled=spilled)
