"""Store and search memory entries.

Public API (used by the orchestrator's pre-fetch and the memory tools):

- ``memory_add(*, owner, content, kind="note", metadata=None, source_task_id=None,
  idempotency_key=None, workspace=None) -> MemoryEntry``
- ``memory_search(*, query, owner=None, workspace=None, k=5, kinds=None, mode=None,
  distinct=True) -> list[MemoryHit]``

``owner`` is a User (or a user id) or None (None = the shared knowledge base, readable by
every user); an anonymous user is refused. Entries belong to a workspace (``workspace``, a
Workspace or its id; default: the owner's default workspace). A search sees the shared
entries plus those of one workspace when ``workspace`` is given (a task's search: the
task's workspace), else those of every workspace ``owner`` is a member of; never another
workspace's. The caller checks that the owner may read or write that workspace
(workspaces.access). Both raise ``EmbedderMismatch`` (503, ``embedder_mismatch``) when
stored vectors come from another embedder or dimension.

Scores: in "vector" mode the cosine similarity (1 − cosine distance), 1.0 for the same
text, about 0 for unrelated text. In "hybrid" mode the reciprocal-rank-fusion score scaled
so that rank 1 in both the vector and the full-text ranking gives 1.0 (rank 1 in one list
only gives 0.5); it orders results but is not a similarity.

Near-duplicates are collapsed (``distinct``, on by default): an entry whose content is the
same as a better hit's, or nearly so, is skipped and the k slots are filled with distinct
entries, so the same earlier result stored three times does not crowd out everything else.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from agentos.api import ApplicationError
from memory.embedders import get_embedder
from memory.models import MemoryEntry

RRF_K = 60
MAX_K = 50
# Two contents are near-duplicates when their sets of words overlap this much (Jaccard).
NEAR_DUPLICATE = 0.85
# With ``distinct``, this many times k hits are fetched so that k distinct ones remain.
DISTINCT_FETCH = 3
MODES = ("vector", "hybrid")


class EmbedderMismatch(ApplicationError):
    """Stored vectors come from another embedder or dimension than the configured one."""

    status_code = 503
    code = "embedder_mismatch"


@dataclass(frozen=True)
class MemoryHit:
    id: int
    content: str
    kind: str
    score: float
    metadata: dict = field(default_factory=dict)


def vector_literal(vector: list[float]) -> str:
    """pgvector's text form, for raw SQL with a `%s::vector` parameter."""
    return "[" + ",".join(f"{value:.7g}" for value in vector) + "]"


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


_column_dimensions: dict[str, int] = {}


def reset_search_caches() -> None:
    """Forget what this process knows of the table's shape (vector size, row estimate)."""
    _column_dimensions.clear()
    _entry_estimates.clear()


def _column_dimension() -> int:
    # The vector column's declared size lives in atttypmod; it only changes through
    # memory_reembed, so one look-up per process is enough.
    alias = connection.alias
    if alias not in _column_dimensions:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT atttypmod FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'embedding'",
                [MemoryEntry._meta.db_table],
            )
            _column_dimensions[alias] = cursor.fetchone()[0]
    return _column_dimensions[alias]


REEMBED_FIX = "run `python manage.py memory_reembed` to re-embed every entry with the configured embedder"


def _check_dimension(name: str, dimensions: int) -> None:
    column = _column_dimension()
    if column != dimensions:
        raise EmbedderMismatch(
            f"memory.embedding holds {column}-dimensional vectors but the configured embedder {name} "
            f"makes {dimensions}; {REEMBED_FIX}"
        )


def embedder_check(name: str, dimensions: int) -> None:
    """Raise EmbedderMismatch when stored vectors could not be compared with new ones.

    (memory_search makes the second check inside its own statement.)"""
    _check_dimension(name, dimensions)
    # Two index range scans instead of `embedder <> name`, which would read every row.
    other = (
        MemoryEntry.objects.filter(Q(embedder__lt=name) | Q(embedder__gt=name))
        .order_by()
        .values_list("embedder", flat=True)[:1]
    )
    other = list(other)
    if other:
        raise EmbedderMismatch(
            f"memory entries were embedded with {other[0]} but the configured embedder is {name}; {REEMBED_FIX}"
        )


def _validate_kind(kind: str, field_name: str = "kind") -> None:
    if kind not in MemoryEntry.Kind.values:
        raise ApplicationError(
            f"kind must be one of {', '.join(MemoryEntry.Kind.values)}, got {kind!r}", field=field_name
        )


def _owner_id(owner: Any) -> int | None:
    """A User (or a user id) -> its id; None -> None (the shared knowledge base)."""
    if owner is None:
        return None
    if isinstance(owner, int) and not isinstance(owner, bool):
        return owner
    if not getattr(owner, "is_authenticated", False):
        raise ApplicationError("an anonymous user has no memory", code="not_authenticated")
    return owner.pk


def memory_add(
    *,
    owner: Any,
    content: str,
    kind: str = "note",
    metadata: dict | None = None,
    source_task_id: Any = None,
    idempotency_key: str | None = None,
    workspace: Any = None,
) -> MemoryEntry:
    """Embed and store one entry (in ``workspace``, else the owner's default workspace; a
    shared entry has none); the same idempotency_key twice stores once and returns the first."""
    content = (content or "").strip()
    if not content:
        raise ApplicationError("content must not be empty", field="content")
    _validate_kind(kind)
    if idempotency_key:
        existing = MemoryEntry.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    embedder = get_embedder()
    embedder_check(embedder.name, embedder.dimensions)
    [vector] = embedder.embed([content])
    owner_id = _owner_id(owner)
    entry = MemoryEntry(
        owner_id=owner_id,
        workspace_id=_workspace_id(workspace) if owner_id is not None else None,
        content=content,
        content_hash=content_hash(content),
        embedding=vector,
        embedder=embedder.name,
        kind=kind,
        metadata=metadata or {},
        source_task_id=source_task_id,
        idempotency_key=idempotency_key or None,
    )
    try:
        if connection.in_atomic_block:
            # A savepoint, so a concurrent duplicate key does not break the caller's transaction.
            with transaction.atomic():
                entry.save()
        else:
            entry.save()  # one INSERT commits by itself: no BEGIN/COMMIT round trips
    except IntegrityError:
        if idempotency_key:
            existing = MemoryEntry.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing
        raise
    return entry


def _workspace_id(workspace: Any) -> int | None:
    """A Workspace (or its id) -> its id; None -> None."""
    if workspace is None or (isinstance(workspace, int) and not isinstance(workspace, bool)):
        return workspace
    if isinstance(workspace, str) and workspace.isdigit():
        return int(workspace)
    return workspace.pk


# The workspaces a user is a member of, inside the search statement (no extra round trip).
MEMBER_WORKSPACES = "SELECT workspace_id FROM workspaces_membership WHERE user_id = %s"


def _scope_sql(owner_id: int | None, kinds: list[str] | None, workspace_id: int | None = None) -> tuple[str, list]:
    """The WHERE fragment of a search: the shared entries plus one workspace's (a task's
    search) or those of every workspace the owner is a member of (a person's search)."""
    if workspace_id is not None:
        sql, params = "(owner_id IS NULL OR workspace_id = %s)", [workspace_id]
    elif owner_id is not None:
        sql, params = f"(owner_id IS NULL OR workspace_id IN ({MEMBER_WORKSPACES}))", [owner_id]
    else:
        sql, params = "owner_id IS NULL", []
    if kinds:
        sql += " AND kind = ANY(%s)"
        params.append(list(kinds))
    return sql, params


# Full-text side of hybrid search. Strict: websearch_to_tsquery (every term must match,
# honours "quoted phrases" and -negation). Any-term: the query's English lexemes OR'ed,
# ranked by ts_rank (term frequency) so entries matching more of the terms come first.
# ts_rank rather than ts_rank_cd (cover density): the same hit@1 and MRR on the labelled
# questions in strict mode, better in any-term mode, and a third less time per match
# (bench/memory_search.py, docs/memory.md).
FTS_QUERIES = {
    "strict": "websearch_to_tsquery('english', %s)",
    "any": (
        "(SELECT to_tsquery('simple', coalesce(string_agg(quote_literal(lexeme), ' | '), '')) "
        "FROM unnest(tsvector_to_array(to_tsvector('english', %s))) AS lexeme)"
    ),
}
FTS_DEFAULT = "strict"


def rrf_fuse(rankings: list[list[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: sum of 1/(k + rank) over the rankings, scaled to 1.0 at best.

    The reference for the SQL in _search_statement (same sums, same order), kept for tests."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    best = len(rankings) / (k + 1)
    return sorted(((item, score / best) for item, score in scores.items()), key=lambda pair: (-pair[1], pair[0]))


def _search_statement(*, mode: str, with_vector: bool, exact: bool, fts: str, scope: str, dimensions: int) -> str:
    """One statement for a whole search: the candidate rankings, their fusion, the embedder
    check and the content of the top k, so a search is one round trip.

    Columns: other embedder (or NULL), vector candidates found, then per hit (NULL when
    there is none): id, score, content, kind, metadata; last, the hnsw.ef_search and
    hnsw.iterative_scan the statement ran with (see _set_ef_search). Parameters, in order (see
    _search): [vector, scope, candidates] (with a vector); k (vector mode) or
    query, scope, full-text rank limit, candidates, RRF k, RRF k, k (hybrid); the embedder name twice.
    """
    # The index orders by half-precision distance (memory.indexing); the candidates are then
    # ranked by the full-precision one. "+ 0" keeps the planner off the index: the exact
    # scan that benchmarks compare with.
    dimensions = int(dimensions)
    # The query vector is sent once (q) and read twice as a sub-select, which the index scan
    # takes as its ordering operand like a literal.
    order = ("(embedding <=> (SELECT vector FROM q)) + 0" if exact
             else f"embedding::halfvec({dimensions}) <=> (SELECT vector::halfvec({dimensions}) FROM q)")  # noqa: S608
    ctes = []
    if with_vector:
        ctes.append(
            "q AS (SELECT %s::vector AS vector), "  # noqa: S608
            "v AS MATERIALIZED (SELECT id, embedding <=> (SELECT vector FROM q) AS distance FROM memory_memoryentry "
            f"WHERE embedding IS NOT NULL AND {scope} ORDER BY {order} LIMIT %s), "
            # An entry whose content had no features has the zero vector: its distance is NaN.
            "vr AS (SELECT id, distance, row_number() OVER (ORDER BY distance, id) AS rank FROM v "
            "WHERE distance <> 'NaN'::float8)"
        )
    else:
        ctes.append("v AS (SELECT NULL::bigint AS id WHERE false), vr AS (SELECT NULL::bigint AS id, "
                    "NULL::float8 AS distance, NULL::bigint AS rank WHERE false)")
    if mode == "vector":
        ctes.append("hits AS (SELECT id, 1 - distance AS score FROM vr ORDER BY rank LIMIT %s)")
    else:
        ctes.append(
            # At most MEMORY_FTS_RANK_LIMIT matches are ranked (the first the index yields; NULL: all).
            f"t AS MATERIALIZED (SELECT id, row_number() OVER (ORDER BY ts_rank(search_vector, query) DESC, id) "  # noqa: S608
            f"AS rank FROM (SELECT id, search_vector, query FROM memory_memoryentry, {FTS_QUERIES[fts]} AS fts(query) "
            f"WHERE search_vector @@ query AND {scope} LIMIT %s) AS matches ORDER BY rank LIMIT %s), "
            # Two rankings: rank 1 in both scores 2 / (k + 1), scaled to 1.0.
            "fused AS (SELECT id, sum(1.0::float8 / (%s + rank)) AS score FROM "
            "(SELECT id, rank FROM vr UNION ALL SELECT id, rank FROM t) AS ranked GROUP BY id), "
            "hits AS (SELECT id, score / (2.0::float8 / (%s + 1)) AS score FROM fused ORDER BY score DESC, id LIMIT %s)"
        )
    # Every fragment is fixed text of this module; values are parameters.
    return (
        "WITH " + ", ".join(ctes) + " "  # noqa: S608
        "SELECT check_row.other, check_row.found, e.id, hits.score, e.content, e.kind, e.metadata, "
        "check_row.ef_search, check_row.iterative_scan "
        "FROM (SELECT (SELECT embedder FROM memory_memoryentry WHERE embedder < %s OR embedder > %s LIMIT 1) "
        "AS other, (SELECT count(*) FROM v) AS found, current_setting('hnsw.ef_search', true) AS ef_search, "
        "current_setting('hnsw.iterative_scan', true) AS iterative_scan) AS check_row "
        "LEFT JOIN hits ON true LEFT JOIN memory_memoryentry e ON e.id = hits.id "
        "ORDER BY hits.score DESC, hits.id"
    )


def _validate_search(k: int, kinds: list[str] | None, mode: str | None) -> str:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise ApplicationError(f"k must be an integer from 1 to {MAX_K}", field="k")
    for kind in kinds or []:
        _validate_kind(kind, "kinds")
    mode = mode or settings.MEMORY_SEARCH_MODE
    if mode not in MODES:
        raise ApplicationError(f"mode must be one of {', '.join(MODES)}, got {mode!r}", field="mode")
    return mode


def auto_ef_search(entries: int) -> int:
    """hnsw.ef_search sized to the index: 200 at 100,000 entries and 400 at 1,000,000, where
    recall@10 reached 0.95 in both modes on the measured curves (bench/memory_search.py,
    docs/memory.md; it varies between builds of the same index), and the power law through
    those two points elsewhere, within [40, 1000]."""
    return max(40, min(1000, math.ceil(200 * (max(entries, 1) / 100_000) ** math.log10(2) - 1e-9)))


# Entries in the table as PostgreSQL estimates them (pg_class.reltuples, kept by ANALYZE,
# autovacuum and index builds), per connection alias: (refresh after, estimate).
_entry_estimates: dict[str, tuple[float, int]] = {}
ENTRY_ESTIMATE_SECONDS = 300.0


def _entry_estimate() -> int:
    alias = connection.alias
    cached = _entry_estimates.get(alias)
    if cached is None or cached[0] < time.monotonic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                           [MemoryEntry._meta.db_table])
            estimate = max(0, cursor.fetchone()[0])  # -1: never analysed
        cached = _entry_estimates[alias] = (time.monotonic() + ENTRY_ESTIMATE_SECONDS, estimate)
    return cached[1]


def default_ef_search() -> int:
    """The depth searches take when MEMORY_HNSW_EF_SEARCH(_HYBRID) is 0 (the default):
    auto_ef_search of the table's estimated size."""
    return auto_ef_search(_entry_estimate())


def _hnsw_settings(candidates: int, mode: str) -> tuple[str, str]:
    """The hnsw.ef_search and hnsw.iterative_scan a search needs, as PostgreSQL shows them.

    The configured depth of the mode, or (0, the default) default_ef_search();
    HNSW returns at most ef_search rows, so it must cover the candidates asked for."""
    depth = settings.MEMORY_HNSW_EF_SEARCH if mode == "vector" else settings.MEMORY_HNSW_EF_SEARCH_HYBRID
    depth = depth or default_ef_search()
    return str(max(depth, candidates)), settings.MEMORY_HNSW_ITERATIVE_SCAN


def _set_ef_search(wanted: tuple[str, str], *, force: bool = False) -> None:
    """SET hnsw.ef_search and hnsw.iterative_scan for this connection, only when they differ
    from what was last set (or when `force`d).

    A session-level SET (not SET LOCAL) so a search needs no transaction of its own: two
    round trips fewer per query. Only memory queries read these settings. A transaction
    that rolls back undoes a SET made inside it, so the remembered values can be wrong:
    each search statement returns the values it ran with, and memory_search sets them
    again (force) and repeats the search when they differ.
    """
    connection.ensure_connection()
    raw = connection.connection
    if force or getattr(raw, "_memory_hnsw_settings", None) != wanted:
        with connection.cursor() as cursor:
            # Both values are validated settings (an int, one of three words), never user input.
            cursor.execute(f"SET hnsw.ef_search = {int(wanted[0])}; SET hnsw.iterative_scan = {wanted[1]}")
        raw._memory_hnsw_settings = wanted


def _search(*, mode: str, vector: str | None, query: str, scope: str, scope_params: list, k: int,
            candidates: int, fts: str, exact: bool, embedder_name: str) -> list[tuple]:
    """Rows of _search_statement: at least one (the embedder check), then one per hit."""
    sql = _search_statement(mode=mode, with_vector=vector is not None, exact=exact, fts=fts, scope=scope,
                            dimensions=_column_dimension())
    params: list = []
    if vector is not None:
        params += [vector, *scope_params, candidates]
    if mode == "vector":
        params += [k]
    else:
        params += [query, *scope_params, settings.MEMORY_FTS_RANK_LIMIT or None, candidates, RRF_K, RRF_K, k]
    params += [embedder_name, embedder_name]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def memory_search(
    *, query: str, owner: Any = None, workspace: Any = None, k: int = 5, kinds: list[str] | None = None,
    mode: str | None = None, exact: bool = False, fts: str = FTS_DEFAULT, distinct: bool = True,
) -> list[MemoryHit]:
    """Top-k entries for `query` among the shared entries and those of `workspace` (or, without
    it, of the owner's workspaces), best first.

    One statement per search (_search_statement). `exact` bypasses the HNSW index
    (benchmarks compare against it); `fts` picks the full-text query of hybrid mode
    ("strict" or "any", see FTS_QUERIES). `distinct` collapses near-duplicates
    (collapse_near_duplicates) and fills the k slots with distinct entries.
    """
    mode = _validate_search(k, kinds, mode)
    query = (query or "").strip()
    if not query:
        return []
    # Hits fetched: more than k when near-duplicates are collapsed, so k distinct ones remain.
    fetch = min(DISTINCT_FETCH * k, DISTINCT_FETCH * MAX_K) if distinct else k
    embedder = get_embedder()
    embedding = embedder.embed([query])[0]
    _check_dimension(embedder.name, embedder.dimensions)
    scope, scope_params = _scope_sql(_owner_id(owner), kinds, _workspace_id(workspace))
    # Vector mode takes twice the hits from the index: it orders by half-precision distance,
    # and the full-precision re-ranking of the extra candidates recovers near-ties.
    candidates = 2 * fetch if mode == "vector" else max(40, 4 * fetch)
    # A query with no features (e.g. only punctuation) embeds to the zero vector, whose
    # cosine distance is NaN: there is no vector ranking, only the full-text one.
    vector = vector_literal(embedding) if any(embedding) else None
    if vector is None and mode == "vector":
        embedder_check(embedder.name, embedder.dimensions)
        return []
    wanted = _hnsw_settings(candidates, mode)
    if vector is not None:
        _set_ef_search(wanted)

    def search(*, exact: bool) -> list[tuple]:
        return _search(mode=mode, vector=vector, query=query, scope=scope, scope_params=scope_params, k=fetch,
                       candidates=candidates, fts=fts, exact=exact, embedder_name=embedder.name)

    rows = search(exact=exact)
    if vector is not None and not exact and tuple(rows[0][-2:]) != wanted:
        # A rolled-back transaction undid the SET: the index ran at the server's defaults.
        _set_ef_search(wanted, force=True)
        rows = search(exact=exact)
    if vector is not None and not exact and rows[0][1] < candidates:
        # The index filters after its scan: a narrow scope (few own entries among many
        # other users') can starve it, so fall back to the exact scan of that scope.
        rows = search(exact=True)
    if rows[0][0] is not None:
        raise EmbedderMismatch(
            f"memory entries were embedded with {rows[0][0]} but the configured embedder is {embedder.name}; "
            f"{REEMBED_FIX}"
        )
    # Django leaves jsonb undecoded in raw queries (its JSONField decodes it for the ORM).
    hits = [MemoryHit(id=entry_id, score=round(score, 6), content=content, kind=kind, metadata=json.loads(metadata))
            for _other, _found, entry_id, score, content, kind, metadata, _ef, _scan in rows if entry_id is not None]
    return collapse_near_duplicates(hits, k) if distinct else hits


def _words(content: str) -> tuple[str, frozenset[str]]:
    words = re.findall(r"\w+", content.casefold())
    return " ".join(words), frozenset(words)


def collapse_near_duplicates(hits: list[MemoryHit], k: int) -> list[MemoryHit]:
    """The first ``k`` hits whose content is not the same as, or nearly the same as (the same
    words give or take 15 %, ignoring case, spacing and punctuation), a better hit's."""
    kept: list[MemoryHit] = []
    seen: list[tuple[str, frozenset[str]]] = []
    for hit in hits:
        text, words = _words(hit.content)
        if any(text == other_text or (words and other_words and len(words & other_words) / len(words | other_words)
                                      >= NEAR_DUPLICATE) for other_text, other_words in seen):
            continue
        kept.append(hit)
        seen.append((text, words))
        if len(kept) == k:
            break
    return kept
