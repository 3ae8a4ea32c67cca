# An entry's embedding and tsvector are kept in the table's own pages (storage MAIN),
# instead of the types' defaults: EXTERNAL for pgvector's vector, EXTENDED for tsvector.
#
# An entry's row (content, tsvector, a 384-dimension vector of 1.5 kB; 6 kB at 1,536) passes
# PostgreSQL's 2 kB threshold. With the defaults the vector was then moved, uncompressed, to
# the TOAST table (and the tsvector compressed or moved too): every row a scoped or exact
# scan reads, every candidate a search re-ranks at full precision and every full-text match
# it ranks cost a TOAST look-up. With MAIN the content goes out of line first; the vector and
# the tsvector stay in the row (compressed when that helps) unless the row cannot fit in a
# page at all.
#
# Metadata only, instant: rows written before keep their layout until they are rewritten
# (VACUUM FULL memory_memoryentry, or memory_reembed); see docs/operations.md.

from django.db import migrations

FORWARD = ("ALTER TABLE memory_memoryentry ALTER COLUMN embedding SET STORAGE MAIN, "
           "ALTER COLUMN search_vector SET STORAGE MAIN")
BACKWARD = ("ALTER TABLE memory_memoryentry ALTER COLUMN embedding SET STORAGE EXTERNAL, "
            "ALTER COLUMN search_vector SET STORAGE EXTENDED")


class Migration(migrations.Migration):

    dependencies = [
        ('memory', '0006_hnsw_m16_ef96'),
    ]

    operations = [
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
