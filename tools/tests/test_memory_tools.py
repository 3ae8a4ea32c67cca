"""The memory tools against the real memory service (pgvector).

transactional_db: dispatch runs handlers on pool threads with their own connections, which
only see committed rows.
"""

import pytest

from memory.models import MemoryEntry
from memory.services import memory_add
from tools.dispatch import ToolContext, dispatch

pytestmark = pytest.mark.django_db(transaction=True)


def test_memory_store_then_search(user):
    context = ToolContext(owner_id=user.pk, task_id=None, idempotency_key=None)
    stored = dispatch(name="memory_store", arguments={"content": "The launch code word is pelican."}, context=context)
    assert stored.ok, stored.error
    entry = MemoryEntry.objects.get(pk=stored.result["id"])
    assert entry.owner_id == user.pk and entry.kind == "note"
    found = dispatch(name="memory_search", arguments={"query": "launch code word pelican", "k": 3}, context=context)
    assert found.ok, found.error
    assert found.result["hits"][0]["content"] == "The launch code word is pelican."


def test_memory_store_honours_the_idempotency_key(user):
    context = ToolContext(owner_id=user.pk, task_id="6f1c8a3e-0000-4000-8000-000000000001",
                          idempotency_key="6f1c8a3e-0000-4000-8000-000000000001:4")
    first = dispatch(name="memory_store", arguments={"content": "remember me once"}, context=context)
    second = dispatch(name="memory_store", arguments={"content": "remember me once"}, context=context)
    assert first.ok and second.ok
    assert first.result["id"] == second.result["id"]
    assert MemoryEntry.objects.filter(content="remember me once").count() == 1
    assert str(MemoryEntry.objects.get(pk=first.result["id"]).source_task_id) == context.task_id


def test_memory_store_key_of_another_user_is_refused(user, other_user):
    dispatch(name="memory_store", arguments={"content": "bob's secret"},
             context=ToolContext(owner_id=other_user.pk, idempotency_key="k1"))
    outcome = dispatch(name="memory_store", arguments={"content": "alice"},
                       context=ToolContext(owner_id=user.pk, idempotency_key="k1"))
    assert (outcome.ok, outcome.error_code) == (False, "tool_error")
    assert "bob" not in outcome.error


def test_memory_store_needs_an_owner():
    outcome = dispatch(name="memory_store", arguments={"content": "x"}, context=ToolContext(owner_id=None))
    assert outcome.error_code == "tool_error" and "needs a task owner" in outcome.error


def test_memory_search_never_returns_another_users_entries(user, other_user):
    memory_add(owner=other_user, content="bob keeps his bicycle in the red garage")
    memory_add(owner=None, content="The shared handbook says bicycles go in the blue garage")
    outcome = dispatch(name="memory_search", arguments={"query": "bicycle garage"},
                       context=ToolContext(owner_id=user.pk))
    contents = [hit["content"] for hit in outcome.result["hits"]]
    assert contents == ["The shared handbook says bicycles go in the blue garage"]


def test_web_search_default_uses_the_local_knowledge_base(user):
    memory_add(owner=None, content="The Eiffel Tower was completed in 1889 for the World's Fair.",
               kind="document", metadata={"title": "Eiffel Tower"})
    memory_add(owner=user, content="My private note about the Eiffel Tower visit.")
    outcome = dispatch(name="web_search", arguments={"query": "Eiffel Tower completed"},
                       context=ToolContext(owner_id=user.pk))
    assert outcome.ok, outcome.error
    assert outcome.result["source"] == "local knowledge base"
    assert [r["title"] for r in outcome.result["results"]] == ["Eiffel Tower"]
    assert "1889" in outcome.result["results"][0]["snippet"]
