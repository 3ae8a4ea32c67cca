"""``manage.py agent replay``: read the sources, replay each run, print the report.

A source is a task id (its log from the database, exported as it is now), an export file
(JSON), or a folder (every ``*.json`` in it, sorted): a folder of exports is a regression
suite for engine and prompt changes (docs/time-travel.md). Exit code: 0 when every run
replays without divergence, 1 when any diverges (or, with ``--prompts active``, a prompt
no longer renders), 2 when a source cannot be read.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from agentos.jsonguard import JSONRejected, parse_json
from tasks.timetravel.document import DocumentError, check_document
from tasks.timetravel.replay import ReplayReport, prompt_token_diffs, replay_document

MAX_FILE_BYTES = 64 * 1024 * 1024


class SourceError(Exception):
    pass


def add_replay_arguments(parser) -> None:
    parser.add_argument("sources", nargs="+", metavar="SOURCE", help="a task id, an export file or a folder of them")
    parser.add_argument("--prompts", choices=("recorded", "active"), default="recorded",
                        help="active: also render each model step's prompt with the active version and compare "
                             "tokens")
    parser.add_argument("--json", action="store_true", help="print one JSON report per run")


def load_documents(source: str) -> list[tuple[str, dict]]:
    """(name, document) for each run a source names; SourceError when it cannot be read."""
    path = Path(source)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise SourceError(f"{source}: no *.json files in this folder")
        return [(str(file), _read(file)) for file in files]
    if path.is_file():
        return [(source, _read(path))]
    try:
        task_id = uuid.UUID(source)
    except ValueError:
        raise SourceError(f"{source}: no such file, folder or task id") from None
    from tasks.models import Task
    from tasks.timetravel.export import task_export

    task = Task.objects.filter(pk=task_id).first()
    if task is None:
        raise SourceError(f"{source}: no such task")
    return [(f"task {task_id}", task_export(task=task))]


def _read(path: Path) -> dict:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise SourceError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        document = parse_json(path.read_bytes(), max_depth=64)
        return check_document(document, require_finished=False)
    except JSONRejected as error:
        raise SourceError(f"{path}: {error.message}") from None
    except DocumentError as error:
        raise SourceError(f"{path}: {error.field or 'document'}: {error.message}") from None


def replay_sources(options: dict, out, style) -> tuple[int, str]:
    """Replay every run of every source; (exit code, one-line summary)."""
    runs: list[tuple[str, dict]] = []
    for source in options["sources"]:
        try:
            runs += load_documents(source)
        except SourceError as error:
            return 2, str(error)
    diverged = 0
    for name, document in runs:
        report = replay_document(document)
        if options.get("prompts") == "active":
            report.prompts = prompt_token_diffs(document)
        diverged += not report.ok
        if options.get("json"):
            out.write(json.dumps({"source": name, **report.as_dict()}, ensure_ascii=False, default=str))
        else:
            _print(name, report, out, style)
    summary = f"{diverged} of {len(runs)} runs diverged" if diverged else f"{len(runs)} runs replayed, no divergence"
    if not options.get("json") and not diverged:
        out.write(style.SUCCESS(summary))
    return (1 if diverged else 0), summary


def _print(name: str, report: ReplayReport, out, style) -> None:
    divergence = report.divergence
    if divergence is None:
        out.write(f"{name}: {report.steps} steps, {report.decisions} engine decisions, no divergence")
    else:
        out.write(style.ERROR(f"{name}: diverges at step {divergence.index}: {divergence.reason}"))
        out.write(f"  recorded: {json.dumps(divergence.recorded, ensure_ascii=False, default=str)}")
        out.write(f"  decided:  {json.dumps(divergence.decided, ensure_ascii=False, default=str)}")
    for diff in report.prompts:
        if diff.error:
            out.write(style.ERROR(f"  step {diff.index}: {diff.recorded_label}: {diff.error}"))
            continue
        change = f"{diff.difference:+d}" if diff.difference is not None else "?"
        exact = "" if diff.reproduced else " (recorded prompt not reproduced exactly)"
        out.write(f"  step {diff.index}: {diff.recorded_label} {diff.recorded_tokens} tokens -> {diff.active_label} "
                  f"{diff.active_tokens} tokens ({change}){exact}")
