# The HNSW index is built with m = 16 and ef_construction = 96 (was 24 and 128): a build of
# a million entries takes about two thirds of the CPU time, at recall@10 of 0.95-0.99 over
# 100,000 entries (docs/memory.md "A million entries").
#
# Safe on a populated database, as 0004: the new index is built CONCURRENTLY under a
# temporary name (reads and writes go on, the old index still serves searches), then the
# old one is dropped and the new one renamed. maintenance_work_mem is sized to the rows
# (the rule of memory.indexing.build_plan), so a large table builds in memory.

import math

import django.contrib.postgres.indexes
import django.db.models.functions.comparison
import pgvector.django.halfvec
import pgvector.django.indexes
from django.conf import settings
from django.db import migrations

NAME = "memory_entry_embedding_hnsw"
TEMPORARY = "memory_entry_embedding_hnsw_new"


def _rebuild(schema_editor, m: int, ef_construction: int) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT atttypmod FROM pg_attribute WHERE attrelid = 'memory_memoryentry'::regclass "
                       "AND attname = 'embedding'")
        dimensions = int(cursor.fetchone()[0])
        cursor.execute("SELECT count(*) FROM memory_memoryentry WHERE embedding IS NOT NULL")
        rows = cursor.fetchone()[0]
        graph_mb = rows * (2 * dimensions + 8 + 48 * 16 + 32 + 200) * 1.25 / 2**20
        memory_mb = max(64, min(math.ceil(graph_mb), settings.MEMORY_INDEX_BUILD_MAX_MEMORY_MB))
        cursor.execute(f"SET maintenance_work_mem = '{memory_mb}MB'")
        cursor.execute(f"SET max_parallel_maintenance_workers = {int(settings.MEMORY_INDEX_BUILD_WORKERS)}")
        # A failed earlier attempt leaves an invalid index behind.
        cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{TEMPORARY}"')
        cursor.execute(
            f'CREATE INDEX CONCURRENTLY "{TEMPORARY}" ON memory_memoryentry USING hnsw '
            f'(("embedding"::halfvec({dimensions})) halfvec_cosine_ops) '
            f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})"
        )
        cursor.execute("RESET maintenance_work_mem")
        cursor.execute("RESET max_parallel_maintenance_workers")
        cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{NAME}"')
        cursor.execute(f'ALTER INDEX "{TEMPORARY}" RENAME TO "{NAME}"')


def forward(apps, schema_editor):
    _rebuild(schema_editor, 16, 96)


def backward(apps, schema_editor):
    _rebuild(schema_editor, 24, 128)


def _index(m: int, ef_construction: int):
    return pgvector.django.indexes.HnswIndex(
        django.contrib.postgres.indexes.OpClass(
            django.db.models.functions.comparison.Cast(
                'embedding', pgvector.django.halfvec.HalfVectorField(dimensions=settings.MEMORY_DIMENSIONS)),
            name='halfvec_cosine_ops'),
        ef_construction=ef_construction, m=m, name=NAME)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ('memory', '0005_workspace'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forward, backward)],
            state_operations=[
                migrations.RemoveIndex(model_name='memoryentry', name=NAME),
                migrations.AddIndex(model_name='memoryentry', index=_index(16, 96)),
            ],
        ),
    ]
