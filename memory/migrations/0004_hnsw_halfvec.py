# The HNSW index now holds half-precision copies of the vectors (embedding::halfvec(d)):
# half the size at the same recall, so twice the entries fit in memory (docs/memory.md).
# The column keeps full precision.
#
# Safe on a populated database: the new index is built CONCURRENTLY under a temporary name
# (reads and writes go on, the old index still serves searches), then the old one is
# dropped and the new one renamed. The build gets maintenance_work_mem sized to the rows
# (the same rule as memory.indexing.build_plan), so a large table builds in memory.

import math

import django.contrib.postgres.indexes
import django.db.models.functions.comparison
import pgvector.django.halfvec
import pgvector.django.indexes
from django.conf import settings
from django.db import migrations

NAME = "memory_entry_embedding_hnsw"
TEMPORARY = "memory_entry_embedding_hnsw_new"


def build_halfvec_index(apps, schema_editor):
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
            f'(("embedding"::halfvec({dimensions})) halfvec_cosine_ops) WITH (m = 24, ef_construction = 128)'
        )
        cursor.execute("RESET maintenance_work_mem")
        cursor.execute("RESET max_parallel_maintenance_workers")
        cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{NAME}"')
        cursor.execute(f'ALTER INDEX "{TEMPORARY}" RENAME TO "{NAME}"')


def build_float_index(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{NAME}"')
        cursor.execute(f'CREATE INDEX CONCURRENTLY "{NAME}" ON memory_memoryentry USING hnsw '
                       '(embedding vector_cosine_ops) WITH (m = 24, ef_construction = 128)')


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ('memory', '0003_hnsw_m24_ef128'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(build_halfvec_index, build_float_index)],
            state_operations=[
                migrations.RemoveIndex(
                    model_name='memoryentry',
                    name='memory_entry_embedding_hnsw',
                ),
                migrations.AddIndex(
                    model_name='memoryentry',
                    index=pgvector.django.indexes.HnswIndex(django.contrib.postgres.indexes.OpClass(django.db.models.functions.comparison.Cast('embedding', pgvector.django.halfvec.HalfVectorField(dimensions=settings.MEMORY_DIMENSIONS)), name='halfvec_cosine_ops'), ef_construction=128, m=24, name='memory_entry_embedding_hnsw'),
                ),
            ],
        ),
    ]
