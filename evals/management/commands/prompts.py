"""``manage.py prompts eval <slug> --version N --dataset NAME [--min-pass-rate X]``

Runs an eval in this process (no worker needed, for the CI of prompt changes), prints the
per-item table and the pass rate, and exits with status 1 when the pass rate is below
``--min-pass-rate`` (0–1), or when a run did not complete with every item evaluated (a
worker thread failed). ``--compare M`` also runs version M and prints both side by side;
the threshold applies to version N.
"""

from __future__ import annotations

import logging
import threading

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from agentos.api import ApplicationError
from evals.defaults import load_dataset, shipped_names
from evals.execution import eval_run_work
from evals.models import EvalRun
from evals.report import text_table
from evals.selectors import dataset_by_name
from evals.services import eval_run_create
from prompts.models import PromptVersion

logger = logging.getLogger(__name__)


def _run_inline(run: EvalRun) -> tuple[EvalRun, list[BaseException]]:
    """The run's ``concurrency`` workers as threads of this process (each has its own
    connection); the run, and what its threads raised."""
    failures: list[BaseException] = []
    if run.concurrency <= 1:
        eval_run_work(run_id=run.pk)
    else:
        def work() -> None:
            try:
                eval_run_work(run_id=run.pk)
            except Exception as error:  # reported with the run's outcome, not lost with the thread
                logger.exception("eval run %s: a worker thread failed", run.pk)
                failures.append(error)
            finally:
                close_old_connections()

        threads = [threading.Thread(target=work, name=f"eval-{run.pk}-{n}") for n in range(run.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    run.refresh_from_db()
    return run, failures


def _incomplete(run: EvalRun, failures: list[BaseException]) -> str | None:
    """Why ``run`` cannot be judged by its pass rate, or None when every item was evaluated."""
    if run.status == EvalRun.Status.COMPLETED and run.done == run.total and not failures:
        return None
    reason = f"{run.version.label}: the run did not complete ({run.status}, {run.done} of {run.total} items evaluated)"
    if failures:
        reason += f"; a worker failed: {type(failures[0]).__name__}: {failures[0]}"
    return " ".join(reason.split())[:1000]


class Command(BaseCommand):
    help = "Prompt tools: `prompts eval` runs a version over a dataset and prints the pass rate."

    def add_arguments(self, parser) -> None:
        commands = parser.add_subparsers(dest="action", required=True)
        run = commands.add_parser("eval", help="evaluate a prompt version over a dataset")
        run.add_argument("slug")
        run.add_argument("--version", type=int, required=True, dest="number", help="version number")
        run.add_argument("--dataset", required=True, help="dataset name (shipped, or yours with --owner)")
        run.add_argument("--owner", help="username owning the dataset, when several share its name")
        run.add_argument("--min-pass-rate", type=float, default=None, help="fail below this pass rate (0-1)")
        run.add_argument("--compare", type=int, default=None, help="also run this version and show both")
        run.add_argument("--concurrency", type=int, default=1, help="items evaluated at once (default 1)")

    def _version(self, slug: str, number: int) -> PromptVersion:
        version = PromptVersion.objects.select_related("template").filter(template__slug=slug, number=number).first()
        if version is None:
            raise CommandError(f"prompt {slug} has no version {number}")
        return version

    def handle(self, *args, **options) -> None:
        rate = options["min_pass_rate"]
        if rate is not None and not 0 <= rate <= 1:
            raise CommandError("--min-pass-rate is a fraction between 0 and 1, e.g. 0.8")
        if options["dataset"] in shipped_names() and not options["owner"]:
            load_dataset(options["dataset"])
        versions = [self._version(options["slug"], options["number"])]
        if options["compare"] is not None:
            versions.append(self._version(options["slug"], options["compare"]))
        try:
            dataset = dataset_by_name(name=options["dataset"], owner=options["owner"])
            runs = [eval_run_create(owner=None, dataset=dataset, version=version,
                                    concurrency=options["concurrency"], start=False) for version in versions]
        except ApplicationError as error:
            raise CommandError(error.message)
        outcomes = [_run_inline(run) for run in runs]
        runs = [run for run, _ in outcomes]
        self.stdout.write(text_table(runs))
        problems = [problem for problem in (_incomplete(run, failures) for run, failures in outcomes) if problem]
        if problems:
            raise CommandError("; ".join(problems), returncode=1)
        if rate is not None and (runs[0].pass_rate or 0.0) < rate:
            raise CommandError(f"{runs[0].version.label}: pass rate {runs[0].pass_rate or 0:.0%} is below "
                               f"the required {rate:.0%}", returncode=1)
