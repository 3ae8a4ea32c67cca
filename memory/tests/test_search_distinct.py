"""memory_search collapses near-duplicates and fills the k slots with distinct entries."""

import pytest

from memory.services import MemoryHit, collapse_near_duplicates, memory_add, memory_search

pytestmark = pytest.mark.django_db

RESULT = "Result of 'What is 2 plus 2?': the calculator gave 2 + 2 = 4."


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_the_same_result_stored_three_times_is_shown_once(user, mode):
    copies = [memory_add(owner=user, content=text, kind="task_result")
              for text in (RESULT, RESULT + " ", RESULT.upper())]
    others = [memory_add(owner=user, content=text, kind="note") for text in (
        "The calculator evaluates arithmetic such as 2 + 2 or sqrt(81).",
        "2 plus 2 is 4; 7 times 6 is 42.",
        "Redis is an in-memory key-value store.",
    )]
    hits = memory_search(query="What is 2 plus 2?", owner=user, k=3, mode=mode)
    ids = [hit.id for hit in hits]
    assert len(ids) == 3 and len({hit.content.casefold().strip() for hit in hits}) == 3
    assert sum(1 for entry in copies if entry.id in ids) == 1
    assert sum(1 for entry in others if entry.id in ids) == 2
    every = memory_search(query="What is 2 plus 2?", owner=user, k=6, mode=mode, distinct=False)
    assert {entry.id for entry in copies} <= {hit.id for hit in every}


def hit(number, content):
    return MemoryHit(id=number, content=content, kind="note", score=1.0 - number / 10)


def test_near_duplicates_differ_by_case_spacing_punctuation_or_a_word():
    base = "Lisbon had 547,631 inhabitants in 2011 according to the national statistics institute INE"
    hits = [hit(1, base), hit(2, base.lower() + "."), hit(3, base.replace("national", "Portuguese")),
            hit(4, "Porto had 231,800 inhabitants in 2021."), hit(5, base + " (census)")]
    assert [h.id for h in collapse_near_duplicates(hits, 5)] == [1, 4]
    assert [h.id for h in collapse_near_duplicates(hits, 1)] == [1]


def test_distinct_short_texts_are_kept():
    hits = [hit(1, "task 12: 4"), hit(2, "task 13: 42"), hit(3, "")]
    assert [h.id for h in collapse_near_duplicates(hits, 5)] == [1, 2, 3]
