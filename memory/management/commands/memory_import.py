"""python manage.py memory_import PATH... [--owner USERNAME] [--kind document]"""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from agentos.api import ApplicationError
from memory.importing import ImportResult, chunks_from_file, memory_import_chunks
from memory.models import MemoryEntry

SUFFIXES = (".txt", ".md", ".markdown", ".jsonl")


class Command(BaseCommand):
    help = "Import .txt/.md files (chunked by paragraphs) and .jsonl files into memory; idempotent."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", help="files or directories (searched for .txt, .md, .jsonl)")
        parser.add_argument("--owner", help="username; without it the entries join the shared knowledge base")
        parser.add_argument("--kind", default=MemoryEntry.Kind.DOCUMENT, choices=MemoryEntry.Kind.values)

    def handle(self, *args, **options) -> None:
        owner = None
        if options["owner"]:
            try:
                owner = get_user_model().objects.get(username=options["owner"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"no user named {options['owner']!r}") from None
        files = self._files([Path(path) for path in options["paths"]])
        total = ImportResult()
        try:
            for path in files:
                # Chunks are listed first so the bar knows its total.
                chunks = list(chunks_from_file(path, kind=options["kind"]))
                with tqdm(total=len(chunks), desc=path.name, unit="chunk", disable=options["verbosity"] == 0) as bar:
                    result = memory_import_chunks(owner=owner, chunks=chunks, progress=bar)
                total.added += result.added
                total.skipped += result.skipped
                total.files += 1
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"{total.files} files: {total.added} entries added, {total.skipped} skipped (already stored)")

    @staticmethod
    def _files(paths: list[Path]) -> list[Path]:
        files: list[Path] = []
        for path in paths:
            if path.is_dir():
                files += sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES)
            elif path.is_file():
                files.append(path)
            else:
                raise CommandError(f"{path}: no such file or directory")
        return files
