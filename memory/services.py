"""Store and search memory entries.

Public API (used by the orchestrator's pre-fetch and the memory tools):

- ``memory_add(*, owner, content, kind="note", metadata=None, source_task_id=None,
  idempotency_key=None) -> MemoryEntry``
- ``memory_search(*, query, owner, k=5, kinds=None, mode=None) -> list[MemoryHit]``

``owner`` is a User (or a user id) or None (None = the shared knowledge base, readable by
every user); an anonymous user is refused. A search sees the owner's entries plus the
shared ones, never another user's. Both raise ``EmbedderMismatch`` (503,
``embedder_mismatch``) when stored vectors come from another embedder or dimension.

Scores: in "vector" mode the cosine similarity (1 − cosine distance), 1.0 for the same
text, about 0 for unrelated text. In "hybrid" mode the reciprocal-rank-fusion score scaled
so that rank 1 in both the vector and the full-text ranking gives 1.0 (rank 1 in one list
only gives 0.5); it orders results but is not a similarity.
"""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
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


def reset_embedder_check_cache() -> None:
    _column_dimensions.clear()


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


def embedder_check(name: str, dimensions: int) -> None:
    """Raise EmbedderMismatch when stored vectors could not be compared with new ones."""
    fix = "run `python manage.py memory_reembed` to re-embed every entry with the configured embedder"
    column = _column_dimension()
    if column != dimensions:
        raise EmbedderMismatch(
            f"memory.embedding holds {column}-dimensional vectors but the configured embedder {name} "
            f"makes {dimensions}; {fix}"
        )
    # Two index range scans instead of `embedder <> name`, which would read every row.
    other = (
        MemoryEntry.objects.filter(Q(embedder__lt=name) | Q(embedder__gt=name))
        .order_by()
        .values_list("embedder", flat=True)[:1]
    )
    other = list(other)
    if other:
        raise EmbedderMismatch(
            f"memory entries were embedded with {other[0]} but the configured embedder is {name}; {fix}"
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
) -> MemoryEntry:
    """Embed and store one entry; the same idempotency_key twice stores once and returns the first."""
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
    entry = MemoryEntry(
        owner_id=_owner_id(owner),
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
        # A savepoint, so a concurrent duplicate key does not break the caller's transaction.
        with transaction.atomic():
            entry.save()
    except IntegrityError:
        if idempotency_key:
            existing = MemoryEntry.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing
        raise
    return entry


def _scope_sql(owner_id: int | None, kinds: list[str] | None) -> tuple[str, list]:
    sql, params = "(owner_id IS NULL OR owner_id = %s)", [owner_id]
    if kinds:
        sql += " AND kind = ANY(%s)"
        params.append(list(kinds))
    return sql, params


def _vector_ranking(vector: str, scope: str, scope_params: list, limit: int, exact: bool) -> list[tuple]:
    """[(id, cosine distance)] nearest first. exact=True skips the HNSW index (call it in a transaction)."""
    with connection.cursor() as cursor:
        if exact:
            cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(
            f"SELECT id, embedding <=> %s::vector AS distance FROM memory_memoryentry "  # noqa: S608 - fixed fragments only
            f"WHERE embedding IS NOT NULL AND {scope} ORDER BY embedding <=> %s::vector LIMIT %s",
            [vector, *scope_params, vector, limit],
        )
        return cursor.fetchall()


# Full-text side of hybrid search. Strict: websearch_to_tsquery (every term must match,
# honours "quoted phrases" and -negation). Any-term: the query's English lexemes OR'ed,
# ranked by ts_rank_cd so entries covering more terms, closer together, come first.
FTS_QUERIES = {
    "strict": "websearch_to_tsquery('english', %s)",
    "any": (
        "(SELECT to_tsquery('simple', coalesce(string_agg(quote_literal(lexeme), ' | '), '')) "
        "FROM unnest(tsvector_to_array(to_tsvector('english', %s))) AS lexeme)"
    ),
}
FTS_DEFAULT = "strict"


def _text_ranking(query: str, scope: str, scope_params: list, limit: int, fts: str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM memory_memoryentry, {FTS_QUERIES[fts]} AS fts(query) "  # noqa: S608 - fixed fragments only
            f"WHERE search_vector @@ query AND {scope} "
            "ORDER BY ts_rank_cd(search_vector, query) DESC, id LIMIT %s",
            [query, *scope_params, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def rrf_fuse(rankings: list[list[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: sum of 1/(k + rank) over the rankings, scaled to 1.0 at best."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    best = len(rankings) / (k + 1)
    return sorted(((item, score / best) for item, score in scores.items()), key=lambda pair: (-pair[1], pair[0]))


def _validate_search(k: int, kinds: list[str] | None, mode: str | None) -> str:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise ApplicationError(f"k must be an integer from 1 to {MAX_K}", field="k")
    for kind in kinds or []:
        _validate_kind(kind, "kinds")
    mode = mode or settings.MEMORY_SEARCH_MODE
    if mode not in MODES:
        raise ApplicationError(f"mode must be one of {', '.join(MODES)}, got {mode!r}", field="mode")
    return mode


def _set_ef_search(value: int) -> None:
    """SET hnsw.ef_search for this connection, only when it differs from what was last set.

    A session-level SET (not SET LOCAL) so a search needs no transaction of its own: two
    round trips fewer per query. Only memory queries read this setting.
    """
    raw = connection.connection
    if getattr(raw, "_memory_ef_search", None) != value:
        with connection.cursor() as cursor:
            cursor.execute(f"SET hnsw.ef_search = {int(value)}")
        raw._memory_ef_search = value


def _vector_search(vector: str, scope: str, scope_params: list, candidates: int, exact: bool) -> list:
    # HNSW returns at most ef_search rows, so it must cover the candidates asked for.
    _set_ef_search(max(settings.MEMORY_HNSW_EF_SEARCH, candidates))
    with transaction.atomic() if exact else nullcontext():
        rows = _vector_ranking(vector, scope, scope_params, candidates, exact)
    if len(rows) < candidates and not exact:
        # The index filters after its scan: a narrow scope (few own entries among many
        # other users') can starve it, so fall back to the exact scan of that scope.
        with transaction.atomic():
            rows = _vector_ranking(vector, scope, scope_params, candidates, exact=True)
    return rows


def memory_search(
    *, query: str, owner: Any, k: int = 5, kinds: list[str] | None = None, mode: str | None = None,
    exact: bool = False, fts: str = FTS_DEFAULT,
) -> list[MemoryHit]:
    """Top-k entries for `query` among the owner's and the shared entries (best first).

    `exact` bypasses the HNSW index (benchmarks compare against it); `fts` picks the
    full-text query of hybrid mode ("strict" or "any", see FTS_QUERIES).
    """
    mode = _validate_search(k, kinds, mode)
    query = (query or "").strip()
    if not query:
        return []
    embedder = get_embedder()
    embedder_check(embedder.name, embedder.dimensions)
    embedding = embedder.embed([query])[0]
    scope, scope_params = _scope_sql(_owner_id(owner), kinds)
    candidates = k if mode == "vector" else max(40, 4 * k)
    if not any(embedding):
        # A query with no features (e.g. only punctuation) embeds to the zero vector, whose
        # cosine distance is NaN: there is no vector ranking, only the full-text one.
        vector_rows: list = []
    else:
        vector_rows = _vector_search(vector_literal(embedding), scope, scope_params, candidates, exact)
        # An entry whose own content had no features has the zero vector: its distance is NaN.
        vector_rows = [row for row in vector_rows if row[1] == row[1]]
    if mode == "vector":
        ranked = [(entry_id, 1.0 - distance) for entry_id, distance in vector_rows]
    else:
        text_ids = _text_ranking(query, scope, scope_params, candidates, fts)
        ranked = rrf_fuse([[row[0] for row in vector_rows], text_ids])[:k]
    # The embedding column is left out: parsing 10 vectors would cost more than the search.
    rows = {row["id"]: row for row in MemoryEntry.objects.filter(id__in=[entry_id for entry_id, _ in ranked])
            .values("id", "content", "kind", "metadata")}
    return [MemoryHit(score=round(score, 6), **rows[entry_id]) for entry_id, score in ranked if entry_id in rows]
