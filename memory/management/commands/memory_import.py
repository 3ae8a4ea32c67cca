"""python manage.py memory_import PATH... [--owner USERNAME [--workspace ID|SLUG]] [--kind KIND] [--bulk | --no-bulk]

Shows a bar of the chunks imported, then, after a bulk import, the phases of the HNSW index
build read from pg_stat_progress_create_index.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from agentos.api import ApplicationError
from memory.importing import ImportResult, chunks_from_file, memory_import_chunks, table_analyze
from memory.indexing import BuildProgress, index_build
from memory.models import MemoryEntry

SUFFIXES = (".txt", ".md", ".markdown", ".jsonl")


class Command(BaseCommand):
    help = "Import .txt/.md files (chunked by paragraphs) and .jsonl files into memory; idempotent."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", help="files or directories (searched for .txt, .md, .jsonl)")
        parser.add_argument("--owner", help="username; without it the entries join the shared knowledge base")
        parser.add_argument("--workspace", help="id or slug of the workspace the entries go to (the owner must be an "
                                                 "operator there; default: the owner's personal workspace)")
        parser.add_argument("--kind", default=MemoryEntry.Kind.DOCUMENT, choices=MemoryEntry.Kind.values)
        parser.add_argument(
            "--bulk", action=argparse.BooleanOptionalAction, default=None,
            help="load with COPY and build the HNSW index once at the end (default: when the files hold at "
                 "least MEMORY_IMPORT_BULK_MIN chunks)",
        )

    def handle(self, *args, **options) -> None:
        owner = None
        if options["owner"]:
            try:
                owner = get_user_model().objects.get(username=options["owner"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"no user named {options['owner']!r}") from None
        workspace = self._workspace(owner, options["workspace"])
        files = self._files([Path(path) for path in options["paths"]])
        total = ImportResult()
        try:
            # Chunks are listed first so the bar knows its total (and bulk mode its size).
            counts = {path: sum(1 for _ in chunks_from_file(path, kind=options["kind"])) for path in files}
            bulk = options["bulk"]
            if bulk is None:
                bulk = sum(counts.values()) >= settings.MEMORY_IMPORT_BULK_MIN
            try:
                for path in files:
                    with tqdm(total=counts[path], desc=path.name, unit="chunk",
                              disable=options["verbosity"] == 0) as bar:
                        result = memory_import_chunks(owner=owner, chunks=chunks_from_file(path, kind=options["kind"]),
                                                      progress=bar, bulk=bulk, workspace=workspace)
                    total.added += result.added
                    total.skipped += result.skipped
                    total.files += 1
                    total.index_dropped |= result.index_dropped
            finally:
                # Also after a failure: what was loaded is searchable, with its statistics and index.
                if total.added:
                    table_analyze()
                if total.index_dropped:
                    self._build_index(quiet=options["verbosity"] == 0)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"{total.files} files: {total.added} entries added, {total.skipped} skipped (already stored)")

    @staticmethod
    def _workspace(owner, value: str | None):
        """The workspace named by id or slug, where ``owner`` is an operator; None: the default."""
        if value is None:
            return None
        if owner is None:
            raise CommandError("--workspace needs --owner (shared entries belong to no workspace)")
        from workspaces.access import workspace_for_write
        from workspaces.models import Workspace

        if not value.isdigit():
            value = Workspace.objects.filter(slug=value).values_list("pk", flat=True).first() or -1
        try:
            return workspace_for_write(user=owner, workspace_id=value)
        except ApplicationError as error:
            raise CommandError(f"{error.message} (--workspace {value})") from None

    def _build_index(self, *, quiet: bool) -> None:
        bars: dict[str, tqdm] = {}

        def show(step: BuildProgress) -> None:
            if step.phase == "done":  # the summary line below says it
                return
            if step.phase not in bars:
                for bar in bars.values():
                    bar.close()
                bars[step.phase] = tqdm(total=step.total or None, desc=f"index: {step.phase}", unit="row",
                                        disable=quiet)
            bar = bars[step.phase]
            bar.update(step.done - bar.n)

        try:
            report = index_build(progress=show)
        finally:
            for bar in bars.values():
                bar.close()
        plan = report.plan
        self.stdout.write(
            f"HNSW index built over {plan.rows} entries in {report.seconds:.1f} s "
            f"({report.index_bytes / 2**20:.0f} MB; maintenance_work_mem {plan.maintenance_work_mem_mb} MB, "
            f"{plan.parallel_workers} parallel workers)"
        )
        if report.spilled or not plan.fits_in_memory:
            self.stderr.write("the index graph did not fit in maintenance_work_mem: raise "
                              "MEMORY_INDEX_BUILD_MAX_MEMORY_MB for a faster build (docs/memory.md)")

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
