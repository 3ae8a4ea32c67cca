"""Embedders, mismatch detection and memory_reembed."""

import math

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from memory.embedders import HashingEmbedder, get_embedder
from memory.models import MemoryEntry
from memory.services import EmbedderMismatch, memory_add, memory_search, reset_search_caches


@pytest.fixture(autouse=True)
def _fresh_check_cache():
    reset_search_caches()
    yield
    reset_search_caches()


def test_hashing_is_deterministic_normalised_and_lexical():
    embedder = HashingEmbedder(384)
    text = ["Rust has no garbage collector"]
    first, again = embedder.embed(text), HashingEmbedder(384).embed(text)
    assert first == again
    assert math.isclose(sum(value * value for value in first[0]), 1.0, rel_tol=1e-9)
    [query, near, far] = embedder.embed(["garbage collection in Rust", "Rust avoids a garbage collector", "Celery"])
    dot = lambda a, b: sum(x * y for x, y in zip(a, b, strict=True))  # noqa: E731
    assert dot(query, near) > 0.4 > 0.1 > dot(query, far)
    assert embedder.embed([""])[0] == [0.0] * 384


def test_get_embedder_follows_settings():
    assert get_embedder().name == "hashing-384"
    with override_settings(MEMORY_DIMENSIONS=128):
        assert get_embedder().name == "hashing-128" and get_embedder().dimensions == 128
    with override_settings(MEMORY_EMBEDDER="sentence-transformers", MEMORY_DIMENSIONS=256), pytest.raises(
        ImproperlyConfigured, match="384"
    ):
        get_embedder()
    with override_settings(MEMORY_EMBEDDER="openai", OPENAI_API_KEY=""):
        with pytest.raises(ImproperlyConfigured, match="OPENAI_API_KEY"):
            get_embedder().embed(["x"])


@pytest.mark.django_db
def test_other_embedder_in_table_is_detected_and_reembedded(user):
    memory_add(owner=user, content="PgBouncer pools PostgreSQL connections.")
    vector = HashingEmbedder(384).embed(["Go has goroutines."])[0]
    MemoryEntry.objects.create(owner=user, content="Go has goroutines.", content_hash="x", embedding=vector,
                               embedder="openai-text-embedding-3-small-384")
    with pytest.raises(EmbedderMismatch) as raised:
        memory_search(query="goroutines", owner=user)
    assert "openai-text-embedding-3-small-384" in raised.value.message
    assert "hashing-384" in raised.value.message and "memory_reembed" in raised.value.message
    with pytest.raises(EmbedderMismatch):
        memory_add(owner=user, content="another note")
    call_command("memory_reembed", verbosity=0)
    assert set(MemoryEntry.objects.values_list("embedder", flat=True)) == {"hashing-384"}
    assert memory_search(query="goroutines", owner=user, k=1)[0].content == "Go has goroutines."


def _column_dimension():
    with connection.cursor() as cursor:
        cursor.execute("SELECT atttypmod FROM pg_attribute WHERE attrelid = 'memory_memoryentry'::regclass "
                       "AND attname = 'embedding'")
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_dimension_change_is_detected_and_column_retyped(user):
    # The test's transaction is rolled back afterwards, ALTER TABLE included.
    memory_add(owner=user, content="Celery beat sends periodic tasks.")
    memory_add(owner=None, content="Django is named after Django Reinhardt.")
    with override_settings(MEMORY_DIMENSIONS=128):
        with pytest.raises(EmbedderMismatch, match="384-dimensional.*hashing-128.*memory_reembed"):
            memory_search(query="celery", owner=user)
        call_command("memory_reembed", verbosity=0)
        assert _column_dimension() == 128
        assert set(MemoryEntry.objects.values_list("embedder", flat=True)) == {"hashing-128"}
        assert len(MemoryEntry.objects.first().embedding) == 128
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'memory_entry_embedding_hnsw'")
            assert "halfvec(128)) halfvec_cosine_ops" in cursor.fetchone()[0]
        hits = memory_search(query="Who is Django named after?", owner=user, k=1)
        assert hits[0].content.startswith("Django is named")
