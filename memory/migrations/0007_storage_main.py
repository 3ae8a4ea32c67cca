# An entry's embedding and tsvector are kept in the table's own pages (storage MAIN),
# instead of PostgreSQL's default for these types (EXTENDED).
#
# An entry's row (content, tsvector, a 384-dimension vector of 1.5 kB; 6 kB at 1,536) passes
# PostgreSQL's 2 kB threshold. With EXTENDED the largest values were compressed and then moved
# to the TOAST table: every row an exact or scoped scan reads, every candidate a search
# re-ranks at full precision and every full-text match it ranks then cost a TOAST look-up
# (three buffers) and a decompression. With MAIN the content goes out of line first; the
# vector and the tsvector stay in the row (compressed when that helps) unless the row cannot
# fit in a page at all.
#
# Metadata only, instant: rows written before keep their layout until they are rewritten
# (VACUUM FULL memory_memoryentry, or memory_reembed); see docs/operations.md.

from django.db import migrations

COLUMNS = ("embedding", "search_vector")


def _storage(kind: str) -> str:
    return "ALTER TABLE memory_memoryentry " + ", ".join(
        f"ALTER COLUMN {column} SET STORAGE {kind}" for column in COLUMNS)


class Migration(migrations.Migration):

    dependencies = [
        ('memory', '0006_hnsw_m16_ef96'),
    ]

    operations = [
        migrations.RunSQL(_storage("MAIN"), _storage("EXTENDED")),
    ]
