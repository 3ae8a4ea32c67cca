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
