"""python manage.py memory_reembed: re-embed every entry with the configured embedder.

Run it after changing MEMORY_EMBEDDER or MEMORY_DIMENSIONS. When the dimension changed,
the column is retyped first (its old vectors cannot be converted) and the HNSW index is
rebuilt at the end.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import connection, transaction
from tqdm import tqdm

from memory.embedders import get_embedder
from memory.indexing import index_build
from memory.models import HNSW_INDEX_NAME, MemoryEntry
from memory.services import reset_search_caches, vector_literal

BATCH_SIZE = 256
TABLE = MemoryEntry._meta.db_table


class Command(BaseCommand):
    help = "Re-embed memory entries made by another embedder or dimension than the configured one."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--all", action="store_true", help="re-embed every entry, not only mismatched ones")

    def handle(self, *args, **options) -> None:
        embedder = get_embedder()
        retyped = self._retype_column(embedder.dimensions)
        pending = MemoryEntry.objects.order_by("id")
        if not (options["all"] or retyped):
            pending = pending.exclude(embedder=embedder.name)
        ids = list(pending.values_list("id", flat=True))
        with tqdm(total=len(ids), unit="entry", desc="re-embedding", disable=options["verbosity"] == 0) as bar:
            for start in range(0, len(ids), BATCH_SIZE):
                batch = list(MemoryEntry.objects.filter(id__in=ids[start:start + BATCH_SIZE]).only("id", "content"))
                vectors = embedder.embed([entry.content for entry in batch])
                # Raw SQL: the model field casts to the dimension it was imported with,
                # which is the old one when the column was just retyped.
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.executemany(
                        f"UPDATE {TABLE} SET embedding = %s::vector, embedder = %s WHERE id = %s",  # noqa: S608
                        [(vector_literal(vector), embedder.name, entry.id)
                         for entry, vector in zip(batch, vectors, strict=True)],
                    )
                bar.update(len(batch))
        if retyped:
            self._create_index()
        reset_search_caches()
        self.stdout.write(f"{len(ids)} entries re-embedded with {embedder.name}")

    def _retype_column(self, dimensions: int) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT atttypmod FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'embedding'", [TABLE]
            )
            if cursor.fetchone()[0] == dimensions:
                return False
            with transaction.atomic():
                # Check deferred foreign keys now: ALTER TABLE refuses to run with pending
                # trigger events (only possible when called inside a larger transaction).
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(f'DROP INDEX IF EXISTS "{HNSW_INDEX_NAME}"')
                cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN embedding TYPE vector({int(dimensions)}) USING NULL")
        self.stdout.write(f"embedding column is now vector({dimensions})")
        return True

    def _create_index(self) -> None:
        report = index_build()
        self.stdout.write(f"HNSW index rebuilt in {report.seconds:.1f} s")
