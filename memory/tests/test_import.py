"""memory_import command, chunking and the default knowledge base."""

import json

import pytest
from django.core.management import CommandError, call_command

from memory.defaults import knowledge_chunks, load_defaults
from memory.importing import chunk_text
from memory.models import MemoryEntry
from memory.services import memory_search


def test_short_paragraphs_merge_and_long_ones_split_at_sentences():
    long = " ".join(f"Sentence number {i} says something about databases." for i in range(40))
    text = f"# Title\n\nShort one.\n\nShort two.\n\n{long}\n\n## Next\n\nAfter heading."
    chunks = chunk_text(text, max_chars=300)
    assert chunks[0] == ("Title", "Short one.\n\nShort two.")
    body = [content for heading, content in chunks if heading == "Title"][1:]
    assert all(len(content) <= 300 for content in body)
    assert all(content.endswith("databases.") for content in body)
    assert " ".join(body) == long
    assert chunks[-1] == ("Next", "After heading.")


def test_no_merge_keeps_each_paragraph():
    assert [c for _, c in chunk_text("a.\n\nb.", merge=False)] == ["a.", "b."]


@pytest.mark.django_db
def test_import_is_idempotent(tmp_path, user, capsys):
    (tmp_path / "notes.md").write_text("# Ops\n\nThe backup runs at 02:00 UTC.\n\nRestores are tested monthly.\n")
    rows = [{"content": "Invoices are due in 30 days.", "metadata": {"team": "finance"}},
            {"content": "Refunds need approval.", "kind": "note"}]
    (tmp_path / "facts.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    call_command("memory_import", str(tmp_path), "--owner", "alice", verbosity=0)
    assert "2 files: 3 entries added, 0 skipped" in capsys.readouterr().out
    call_command("memory_import", str(tmp_path), "--owner", "alice", verbosity=0)
    assert "0 entries added, 3 skipped" in capsys.readouterr().out
    assert MemoryEntry.objects.filter(owner=user).count() == 3
    invoice = MemoryEntry.objects.get(content__startswith="Invoices")
    assert invoice.metadata["team"] == "finance" and invoice.kind == "document"
    assert MemoryEntry.objects.get(content__startswith="Refunds").kind == "note"
    # The same content for the shared base is another entry (idempotency is per owner).
    call_command("memory_import", str(tmp_path / "facts.jsonl"), verbosity=0)
    assert MemoryEntry.objects.filter(owner__isnull=True).count() == 2


@pytest.mark.django_db
def test_import_errors_are_command_errors(tmp_path, user):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"content": "ok"}\n{"text": "no content"}\n')
    with pytest.raises(CommandError, match="bad.jsonl:2"):
        call_command("memory_import", str(bad), verbosity=0)
    with pytest.raises(CommandError, match="no user"):
        call_command("memory_import", str(bad), "--owner", "nobody", verbosity=0)
    with pytest.raises(CommandError, match="no such file"):
        call_command("memory_import", str(tmp_path / "missing.md"), verbosity=0)
    (tmp_path / "data.csv").write_text("a,b")
    with pytest.raises(CommandError, match="only .txt"):
        call_command("memory_import", str(tmp_path / "data.csv"), verbosity=0)


@pytest.mark.django_db
def test_knowledge_base_loads_once_and_answers(user):
    expected = len({chunk.content for chunk in knowledge_chunks()})
    assert expected >= 250
    assert "added" in load_defaults()
    assert MemoryEntry.objects.filter(owner__isnull=True).count() == expected
    assert "already loaded" in load_defaults()
    assert MemoryEntry.objects.count() == expected
    hits = memory_search(query="When was PostgreSQL first released?", owner=user, k=3)
    assert any("8 July 1996" in hit.content for hit in hits)
    hits = memory_search(query="Who created Redis?", owner=user, k=3)
    assert "Salvatore Sanfilippo" in hits[0].content


def _planner_statistics() -> tuple[int, int]:
    """The table's row estimate and how many columns have statistics, as the planner sees them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'memory_memoryentry'::regclass")
        estimate = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'memory_memoryentry' AND attname = 'kind'")
        return estimate, cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_load_leaves_the_planner_statistics_of_the_rows_it_wrote(tmp_path, user):
    """After a load the table is analysed at once (not when autovacuum comes by): the
    planner and the search depth see the entries just written."""
    load_defaults()
    assert _planner_statistics() == (MemoryEntry.objects.count(), 1)
    assert MemoryEntry.objects.count() >= 250
    for index in range(3):
        (tmp_path / f"notes-{index}.md").write_text(f"# Notes {index}\n\nFirst note {index}.\n\nSecond note {index}.\n")
    call_command("memory_import", str(tmp_path), "--owner", "alice", verbosity=0)
    assert _planner_statistics() == (MemoryEntry.objects.count(), 1)


@pytest.mark.django_db
def test_import_into_a_team_workspace_needs_an_operator(tmp_path, user, other_user, capsys):
    from workspaces.services import membership_set, workspace_create

    team = workspace_create(actor=user, name="Support")
    membership_set(actor=user, workspace=team, username="bob", role="viewer")
    (tmp_path / "facts.jsonl").write_text(json.dumps({"content": "Escalations go to the on-call lead."}) + "\n")
    call_command("memory_import", str(tmp_path), "--owner", "alice", "--workspace", team.slug, verbosity=0)
    assert "1 entries added" in capsys.readouterr().out
    assert MemoryEntry.objects.get(owner=user).workspace == team
    # Idempotency is per workspace: the same file for alice's personal workspace is new there.
    call_command("memory_import", str(tmp_path), "--owner", "alice", verbosity=0)
    assert "1 entries added" in capsys.readouterr().out
    with pytest.raises(CommandError, match="role"):
        call_command("memory_import", str(tmp_path), "--owner", "bob", "--workspace", str(team.pk), verbosity=0)
    with pytest.raises(CommandError, match="not found"):
        call_command("memory_import", str(tmp_path), "--owner", "alice", "--workspace", "no-such", verbosity=0)
    with pytest.raises(CommandError, match="needs --owner"):
        call_command("memory_import", str(tmp_path), "--workspace", team.slug, verbosity=0)
    assert MemoryEntry.objects.filter(workspace=team).count() == 1
