"""HNSW index builds: the plan sized to the data, the rebuild after a bulk import, its progress."""

import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from memory.embedders import get_embedder
from memory.indexing import BuildProgress, build_plan, index_build, index_exists
from memory.models import HNSW_INDEX_NAME, MemoryEntry
from memory.services import memory_add, memory_search


def _index_definition() -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [HNSW_INDEX_NAME])
        row = cursor.fetchone()
    return row[0] if row else None


def test_build_memory_grows_with_entries_and_dimensions_up_to_the_cap():
    small = build_plan(rows=1_000, dimensions=384)
    large = build_plan(rows=1_000_000, dimensions=384)
    wide = build_plan(rows=1_000_000, dimensions=1536)
    assert small.maintenance_work_mem_mb == 64  # the floor
    assert 64 < large.maintenance_work_mem_mb < wide.maintenance_work_mem_mb
    assert large.fits_in_memory
    with override_settings(MEMORY_INDEX_BUILD_MAX_MEMORY_MB=512, MEMORY_INDEX_BUILD_WORKERS=3):
        capped = build_plan(rows=1_000_000, dimensions=384)
    assert capped.maintenance_work_mem_mb == 512
    assert not capped.fits_in_memory
    assert capped.parallel_workers == 3


@pytest.mark.django_db
def test_rebuild_recreates_the_migrated_index_and_reports_its_phases(user):
    migrated = _index_definition()
    assert "halfvec_cosine_ops" in migrated
    for text in ["Backups run nightly at two.", "Invoices are due in thirty days.", "Deploys need a review."]:
        memory_add(owner=user, content=text)
    steps: list[BuildProgress] = []
    report = index_build(progress=steps.append)
    assert _index_definition() == migrated
    assert report.plan.rows == 3 and report.index_bytes > 0 and not report.spilled
    assert steps[-1] == BuildProgress(phase="done", done=3, total=3)
    assert memory_search(query="when are invoices due", owner=user, k=1, mode="vector")[0].content.startswith(
        "Invoices")


def _write_notes(path, count: int) -> None:
    rows = [{"content": f"Service {index} owns the {word} queue and pages the on-call team."}
            for index, word in enumerate(["billing", "search", "ingest", "reports", "alerts"][:count])]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")


@pytest.mark.django_db
def test_bulk_import_loads_then_builds_the_index_once_with_progress(tmp_path, user, capsys):
    memory_add(owner=user, content="An entry stored before the import.")
    _write_notes(tmp_path / "services.jsonl", 5)
    call_command("memory_import", str(tmp_path), "--owner", "alice", "--bulk")
    captured = capsys.readouterr()
    assert "1 files: 5 entries added, 0 skipped" in captured.out
    assert "HNSW index built over 6 entries" in captured.out
    assert "services.jsonl" in captured.err  # the bar of the chunks
    assert index_exists()
    assert MemoryEntry.objects.filter(owner=user).count() == 6
    hits = memory_search(query="who owns the ingest queue", owner=user, k=1, mode="hybrid")
    assert hits[0].content.startswith("Service 2 owns the ingest queue")
    # Nothing new the second time: the index is left alone.
    call_command("memory_import", str(tmp_path), "--owner", "alice", "--bulk")
    captured = capsys.readouterr()
    assert "0 entries added, 5 skipped" in captured.out
    assert "HNSW index built" not in captured.out


@pytest.mark.django_db
def test_bulk_mode_follows_the_chunk_count(tmp_path, user, capsys):
    _write_notes(tmp_path / "services.jsonl", 3)
    with override_settings(MEMORY_IMPORT_BULK_MIN=4):
        call_command("memory_import", str(tmp_path), "--owner", "alice", verbosity=0)
        assert "HNSW index built" not in capsys.readouterr().out
        _write_notes(tmp_path / "services.jsonl", 5)
        call_command("memory_import", str(tmp_path), "--owner", "alice", verbosity=0)
        assert "HNSW index built over 5 entries" in capsys.readouterr().out
    assert index_exists()


def _session_setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_search_sets_ef_search_per_mode_and_the_iterative_scan(user):
    memory_add(owner=user, content="The ledger service reconciles payments nightly.")
    with override_settings(MEMORY_HNSW_EF_SEARCH=300, MEMORY_HNSW_EF_SEARCH_HYBRID=180):
        memory_search(query="ledger payments", owner=user, mode="vector")
        assert _session_setting("hnsw.ef_search") == "300"
        assert _session_setting("hnsw.iterative_scan") == "relaxed_order"
        memory_search(query="ledger payments", owner=user, mode="hybrid")
        assert _session_setting("hnsw.ef_search") == "180"
    with override_settings(MEMORY_HNSW_ITERATIVE_SCAN="off"):
        hits = memory_search(query="ledger payments", owner=user, mode="vector")
        assert _session_setting("hnsw.iterative_scan") == "off"
    assert hits[0].content.startswith("The ledger service")


@pytest.mark.django_db
def test_the_default_depth_follows_the_size_of_the_table(user, settings):
    from memory.services import auto_ef_search, reset_search_caches

    # The two measured points, and the bounds.
    assert (auto_ef_search(100_000), auto_ef_search(1_000_000)) == (200, 400)
    assert (auto_ef_search(0), auto_ef_search(10**8)) == (40, 1000)
    settings.MEMORY_HNSW_EF_SEARCH = settings.MEMORY_HNSW_EF_SEARCH_HYBRID = 0
    memory_add(owner=user, content="The ledger service reconciles payments nightly.")
    with connection.cursor() as cursor:
        # PostgreSQL's row estimate as after importing a million entries (rolled back with the test).
        cursor.execute("UPDATE pg_class SET reltuples = 1000000 WHERE oid = 'memory_memoryentry'::regclass")
    reset_search_caches()
    try:
        for mode in ("vector", "hybrid"):
            memory_search(query="ledger payments", owner=user, mode=mode)
            assert _session_setting("hnsw.ef_search") == "400"
    finally:
        reset_search_caches()


def _migrate(target: str | None = None):
    """Migrate memory to ``target`` (None: every app to its latest); the models as they are then."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    targets = [("memory", target)] if target else executor.loader.graph.leaf_nodes()
    return executor.migrate(targets).apps


@pytest.mark.django_db(transaction=True)  # the migration builds CONCURRENTLY: no transaction around it
def test_halfvec_migration_converts_a_populated_index_and_back(user):
    try:
        old = _migrate("0003_hnsw_m24_ef128")
        assert "vector_cosine_ops" in _index_definition()
        # Rows as that schema had them (the model of today has later columns).
        entry = old.get_model("memory", "MemoryEntry")
        embedder = get_embedder()
        for text in ["Backups run nightly at two.", "Invoices are due in thirty days."]:
            # Shared entries: an owned entry's scope (its workspace) has no column before 0005.
            entry.objects.create(owner_id=None, content=text, content_hash=text, embedder=embedder.name,
                                 embedding=embedder.embed([text])[0])
        _migrate("0004_hnsw_halfvec")
        assert "halfvec(384)) halfvec_cosine_ops" in _index_definition()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'memory_entry_embedding_hnsw%%'")
            assert cursor.fetchone()[0] == 1  # the temporary name is gone
        assert MemoryEntry.objects.count() == 2
        hit = memory_search(query="when are invoices due", owner=None, k=1, mode="vector")[0]
        assert hit.content.startswith("Invoices")
    finally:
        _migrate()



@pytest.mark.django_db
def test_an_entrys_vector_and_tsvector_are_kept_in_its_row():
    """Searches read every candidate's embedding and every full-text match's tsvector: both
    use storage MAIN (in the row, compressed when that helps), not the types' defaults
    (EXTERNAL, EXTENDED), which move them to the TOAST table once a row passes 2 kB."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT attname, attstorage FROM pg_attribute WHERE attrelid = 'memory_memoryentry'::regclass "
                       "AND attname IN ('embedding', 'search_vector', 'content') ORDER BY attname")
        storage = dict(cursor.fetchall())
    assert storage == {"content": "x", "embedding": "m", "search_vector": "m"}
