# m = 24, ef_construction = 128: pgvector's defaults (16, 64) reached recall@10 0.89 at
# ef_search 100 on 100k entries in bench/memory_search.py; these reach 0.96 (see README "Memory").

import pgvector.django.indexes
from django.conf import settings
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('memory', '0002_memory_entry'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='memoryentry',
            name='memory_entry_embedding_hnsw',
        ),
        # The build is several times faster when the graph fits in memory (transaction-local).
        migrations.RunSQL("SET LOCAL maintenance_work_mem = '1GB'", reverse_sql=migrations.RunSQL.noop),
        migrations.AddIndex(
            model_name='memoryentry',
            index=pgvector.django.indexes.HnswIndex(ef_construction=128, fields=['embedding'], m=24, name='memory_entry_embedding_hnsw', opclasses=['vector_cosine_ops']),
        ),
    ]
