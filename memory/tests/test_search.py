"""memory_add / memory_search against real PostgreSQL + pgvector."""

import pytest

from agentos.api import ApplicationError
from memory.models import MemoryEntry
from memory.services import memory_add, memory_search, rrf_fuse

pytestmark = pytest.mark.django_db

NOTES = [
    "PostgreSQL was first released in 1996 as the successor of Berkeley POSTGRES.",
    "Redis is an in-memory key-value store often used as a cache and message broker.",
    "SQLite is an embedded SQL database engine stored in a single file.",
    "Rust guarantees memory safety without a garbage collector through ownership and borrowing.",
    "Python was created by Guido van Rossum and first released in 1991.",
]


@pytest.fixture
def notes():
    return [memory_add(owner=None, content=text, kind="document") for text in NOTES]


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_nearest_neighbours_in_expected_order(notes, user, mode):
    hits = memory_search(query="When was PostgreSQL first released?", owner=user, k=3, mode=mode)
    assert hits[0].id == notes[0].id
    # "first released" is shared with the Python note; nothing with the other notes.
    assert hits[1].id == notes[4].id
    assert hits[0].score > hits[1].score


def test_vector_order_is_exact_on_hand_made_set(notes, user):
    hits = memory_search(query="in-memory key-value cache", owner=user, k=5, mode="vector")
    assert [hit.id for hit in hits][:2] == [notes[1].id, notes[3].id]
    assert 0.3 < hits[0].score <= 1.0
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_same_text_scores_one(notes, user):
    [hit] = memory_search(query=NOTES[2], owner=user, k=1, mode="vector")
    assert hit.id == notes[2].id
    assert hit.score == pytest.approx(1.0, abs=1e-5)
    assert hit.kind == "document"


def test_idempotency_key_stores_once(user):
    first = memory_add(owner=user, content="the answer is 42", idempotency_key="task-1:3")
    second = memory_add(owner=user, content="the answer is 42", idempotency_key="task-1:3")
    assert first.pk == second.pk
    assert MemoryEntry.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_racing_duplicate_key_returns_the_first_entry_in_or_out_of_a_transaction(user, monkeypatch):
    """The lookup before the INSERT misses (another writer got there in between): the
    unique key refuses the second row and the first one is returned, with no transaction
    around (autocommit: one INSERT) and inside a caller's transaction (a savepoint)."""
    from django.db import connection, transaction
    from django.db.models.query import QuerySet
    from django.test.utils import CaptureQueriesContext

    first = memory_add(owner=user, content="the answer is 42", idempotency_key="race:1")
    original_first, calls = QuerySet.first, []

    def first_misses_once(queryset):
        calls.append(1)
        return None if len(calls) == 1 else original_first(queryset)

    monkeypatch.setattr(QuerySet, "first", first_misses_once)
    with CaptureQueriesContext(connection) as queries:
        again = memory_add(owner=user, content="the answer is 42", idempotency_key="race:1")
    assert again.pk == first.pk
    assert not any(q["sql"].startswith(("BEGIN", "SAVEPOINT")) for q in queries)
    calls.clear()
    with transaction.atomic():
        inside = memory_add(owner=user, content="the answer is 42", idempotency_key="race:1")
        assert MemoryEntry.objects.count() == 1  # the caller's transaction is still usable
    assert inside.pk == first.pk


def test_invalid_input_is_an_application_error(user):
    with pytest.raises(ApplicationError):
        memory_add(owner=user, content="   ")
    with pytest.raises(ApplicationError):
        memory_add(owner=user, content="x", kind="secret")
    with pytest.raises(ApplicationError):
        memory_search(query="x", owner=user, k=0)
    with pytest.raises(ApplicationError):
        memory_search(query="x", owner=user, mode="fuzzy")


def test_rrf_fuse_scales_best_to_one():
    fused = rrf_fuse([[1, 2, 3], [2, 1, 4]])
    assert {item for item, _ in fused} == {1, 2, 3, 4}
    assert fused[0][1] < 1.0  # nobody is first in both lists
    assert rrf_fuse([[7], [7]])[0] == (7, 1.0)


def test_owner_scoping_even_when_others_entries_are_closer(user, other_user):
    for number in range(60):
        memory_add(owner=other_user, content=f"Kafka topic partition rebalancing note {number}")
    mine = memory_add(owner=user, content="Kafka consumer lag alert for the billing topic")
    shared = memory_add(owner=None, content="Kafka stores messages in partitioned topics.")
    for mode in ("vector", "hybrid"):
        hits = memory_search(query="Kafka topic partition rebalancing", owner=user, k=10, mode=mode)
        assert {hit.id for hit in hits} == {mine.id, shared.id}
    # No owner: the shared knowledge base only.
    assert [hit.id for hit in memory_search(query="Kafka topic", owner=None, k=10)] == [shared.id]


def test_kinds_filter(user):
    note = memory_add(owner=user, content="Deploys happen on Tuesdays.", kind="note")
    result = memory_add(owner=user, content="Deploy report: Tuesday deploy succeeded.", kind="task_result")
    assert [h.id for h in memory_search(query="deploy Tuesday", owner=user, kinds=["task_result"])] == [result.id]
    assert {h.id for h in memory_search(query="deploy Tuesday", owner=user, kinds=["note", "task_result"])} == {
        note.id, result.id}


def test_hybrid_beats_or_equals_vector_on_keyword_queries(user):
    from memory.defaults import load_defaults

    load_defaults()
    expected = {
        "What is the GIL?": "(GIL) lets only one thread",
        "What is a p-value?": "A p-value is",
        "Who created Django?": "Adrian Holovaty",
        "Who created Redis?": "Salvatore Sanfilippo",
    }

    def rank(query, mode):
        contents = [hit.content for hit in memory_search(query=query, owner=user, k=10, mode=mode)]
        return next((i for i, text in enumerate(contents, 1) if expected[query] in text), 99)

    ranks = {query: (rank(query, "vector"), rank(query, "hybrid")) for query in expected}
    assert all(hybrid <= vector for vector, hybrid in ranks.values()), ranks
    assert sum(vector for vector, _ in ranks.values()) > sum(hybrid for _, hybrid in ranks.values()), ranks
    assert ranks["What is the GIL?"][1] <= 2


def test_owner_may_be_an_id_but_not_anonymous(user):
    from django.contrib.auth.models import AnonymousUser

    entry = memory_add(owner=user.pk, content="Staging uses port 8443.")
    assert entry.owner_id == user.pk
    assert memory_search(query="staging port", owner=user.pk)[0].id == entry.id
    with pytest.raises(ApplicationError):
        memory_add(owner=AnonymousUser(), content="should not become shared")
    with pytest.raises(ApplicationError):
        memory_search(query="staging", owner=AnonymousUser())


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_a_search_is_one_statement(notes, user, mode):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # More entries than hybrid's 40 candidates: with fewer, the index cannot fill the list and
    # the search repeats as an exact scan (the narrow-scope fallback), a second statement.
    # Well over 40: the index also holds entries of earlier tests' rolled-back transactions
    # (no VACUUM between tests), which take candidate slots and are then filtered out.
    for number in range(120):
        memory_add(owner=None, content=f"Filler note {number} about release engineering and databases.")
    memory_search(query="warm up the connection", owner=user, k=3, mode=mode)
    with CaptureQueriesContext(connection) as queries:
        hits = memory_search(query="When was PostgreSQL first released?", owner=user, k=3, mode=mode)
    assert hits[0].id == notes[0].id
    assert len(queries) == 1, [q["sql"][:80] for q in queries]


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_the_hnsw_index_can_serve_the_search(notes, user, mode):
    """The statement a search runs orders by an expression the HNSW index answers (the query
    vector, sent once, read through a sub-select): with sequential scans priced out, its plan
    walks the index instead of sorting the table."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        memory_search(query="When was PostgreSQL first released?", owner=user, k=3, mode=mode)
    # The first: with a handful of entries the index cannot fill the candidate list, and the
    # search repeats as an exact scan (the narrow-scope fallback).
    statement = next(query["sql"] for query in queries if query["sql"].startswith("WITH "))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + statement.replace("%", "%%"))
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan using memory_entry_embedding_hnsw" in plan, plan


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_a_rolled_back_transaction_does_not_leave_searches_at_the_server_defaults(notes, user, mode, settings):
    """A search sets the HNSW depth for its connection; a transaction that rolls back undoes
    that SET, and the next search on the connection must not run at PostgreSQL's defaults
    (ef_search 40, no iterative scan: fewer candidates, lower recall)."""
    from django.db import connection, transaction

    class Undo(Exception):
        pass

    settings.MEMORY_HNSW_EF_SEARCH = settings.MEMORY_HNSW_EF_SEARCH_HYBRID = 123
    settings.MEMORY_HNSW_ITERATIVE_SCAN = "strict_order"
    with pytest.raises(Undo), transaction.atomic():
        memory_search(query="PostgreSQL", owner=user, k=3, mode=mode)
        raise Undo
    hits = memory_search(query="When was PostgreSQL first released?", owner=user, k=3, mode=mode)
    assert hits[0].id == notes[0].id
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan')")
        assert cursor.fetchone() == ("123", "strict_order")


def test_hybrid_sql_fusion_matches_the_reference(notes, user):
    from memory.embedders import get_embedder
    from memory.services import FTS_DEFAULT, _scope_sql, _search, vector_literal

    query = "first released"
    vector = vector_literal(get_embedder().embed([query])[0])
    scope, params = _scope_sql(user.pk, None)
    vector_ids = [row[2] for row in _search(mode="vector", vector=vector, query=query, scope=scope,
                                            scope_params=params, k=40, candidates=40, fts=FTS_DEFAULT, exact=True,
                                            embedder_name=get_embedder().name)]
    hybrid = memory_search(query=query, owner=user, k=5, mode="hybrid", exact=True)
    # Same fusion in Python over the same two rankings (the text ranking: entries with both words).
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM memory_memoryentry, websearch_to_tsquery('english', %s) q "
                       "WHERE search_vector @@ q ORDER BY ts_rank(search_vector, q) DESC, id", [query])
        text_ids = [row[0] for row in cursor.fetchall()]
    expected = rrf_fuse([vector_ids, text_ids])[:5]
    assert [(hit.id, hit.score) for hit in hybrid] == [(i, round(s, 6)) for i, s in expected]


def test_hybrid_ranks_at_most_the_configured_number_of_text_matches(user, settings):
    """Full-text ranking is bounded: of 8 entries holding every word of the query, the one
    stored last is first in both rankings (score 1.0); with a limit of 5 matches it is not
    ranked by text, and only its first place in the vector ranking counts (0.5)."""
    for number in range(7):
        memory_add(owner=None, content=f"zeta omega report number {number}")
    dense = memory_add(owner=None, content="zeta omega zeta omega zeta omega")

    def dense_score() -> float | None:
        hits = memory_search(query="zeta omega", owner=user, k=10, mode="hybrid", distinct=False)
        return next((hit.score for hit in hits if hit.id == dense.id), None)

    assert dense_score() == pytest.approx(1.0)
    settings.MEMORY_FTS_RANK_LIMIT = 5
    assert dense_score() == pytest.approx(0.5)
