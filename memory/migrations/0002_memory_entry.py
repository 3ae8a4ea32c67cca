# The vector dimension follows settings.MEMORY_DIMENSIONS so a fresh install gets the
# configured size; changing it later is handled by `manage.py memory_reembed`.

import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.deletion
import django.utils.timezone
import pgvector.django.indexes
import pgvector.django.vector
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('memory', '0001_vector_extension'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='MemoryEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('content', models.TextField()),
                ('content_hash', models.CharField(max_length=64)),
                ('embedding', pgvector.django.vector.VectorField(blank=True, dimensions=settings.MEMORY_DIMENSIONS, null=True)),
                ('embedder', models.CharField(max_length=100)),
                ('kind', models.CharField(choices=[('document', 'Document'), ('task_result', 'Task result'), ('note', 'Note')], default='note', max_length=20)),
                ('metadata', models.JSONField(blank=True, default=dict)),
                ('source_task_id', models.UUIDField(blank=True, null=True)),
                ('idempotency_key', models.CharField(blank=True, max_length=200, null=True, unique=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('search_vector', models.GeneratedField(db_persist=True, expression=django.contrib.postgres.search.SearchVector('content', config='english'), output_field=django.contrib.postgres.search.SearchVectorField())),
                ('owner', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='memory_entries', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name_plural': 'memory entries',
                'ordering': ['-created_at', '-id'],
                'indexes': [models.Index(fields=['owner', 'content_hash'], name='memory_entry_owner_hash'), models.Index(fields=['embedder'], name='memory_entry_embedder'), models.Index(fields=['source_task_id'], name='memory_entry_source_task'), pgvector.django.indexes.HnswIndex(ef_construction=64, fields=['embedding'], m=16, name='memory_entry_embedding_hnsw', opclasses=['vector_cosine_ops']), django.contrib.postgres.indexes.GinIndex(fields=['search_vector'], name='memory_entry_search_gin')],
            },
        ),
    ]
