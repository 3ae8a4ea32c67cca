"""Writes of the evals app: datasets and items, eval runs, feedback on tasks.

Every entry point (API, admin, pages, the ``prompts`` command) calls these; none writes
the models itself.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction

from agentos.api import Conflict
from evals.checks import checks_problems
from evals.errors import EvalError
from evals.models import Dataset, DatasetItem, EvalResult, EvalRun, TaskFeedback
from prompts.models import PromptTemplate, PromptVersion


def dataset_create(*, owner, name: str, description: str = "", template: PromptTemplate | None = None,
                   workspace=None) -> Dataset:
    """A dataset of ``owner`` in ``workspace`` (default: the owner's default workspace); the
    caller has checked the owner may change datasets there."""
    if Dataset.objects.filter(owner=owner, name=name).exists():
        raise Conflict(f"you already have a dataset named {name!r}", code="dataset_exists")
    try:
        return Dataset.objects.create(owner=owner, workspace=workspace, name=name, description=description,
                                      template=template)
    except IntegrityError:  # a concurrent create of the same name
        raise Conflict(f"you already have a dataset named {name!r}", code="dataset_exists")


def dataset_update(*, dataset: Dataset, **changes) -> Dataset:
    allowed = {"name", "description", "template"}
    for name, value in changes.items():
        if name not in allowed:
            raise EvalError(f"{name} cannot be changed", field=name)
        setattr(dataset, name, value)
    if "name" in changes and Dataset.objects.filter(owner=dataset.owner_id, name=dataset.name).exclude(
            pk=dataset.pk).exists():
        raise Conflict(f"you already have a dataset named {dataset.name!r}", code="dataset_exists")
    dataset.save()
    return dataset


def dataset_delete(*, dataset: Dataset) -> None:
    dataset.delete()


def dataset_item_validate(*, dataset: Dataset, query: str, variables: dict, checks: list) -> None:
    """Raise EvalError (with the field) unless the item can be saved; the admin's forms call it too."""
    if not isinstance(variables, dict):
        raise EvalError("variables must be a JSON object", field="variables")
    if not (query or "").strip() and not variables:
        raise EvalError("an item needs a query or variables", field="query")
    if dataset.template_id:
        unknown = sorted(set(variables) - dataset.template.declared_variables)
        if unknown:
            raise EvalError(f"template {dataset.template.slug} has no variable(s) {', '.join(unknown)}",
                            field="variables")
    problems = checks_problems(checks)
    if problems:
        raise EvalError("; ".join(problems), field="checks")


def dataset_item_create(*, dataset: Dataset, query: str = "", variables: dict | None = None,
                        checks: list | None = None, note: str = "", source_task=None) -> DatasetItem:
    # Only a missing value becomes empty; a value of the wrong type is refused by the validation.
    variables = {} if variables is None else variables
    checks = [] if checks is None else checks
    dataset_item_validate(dataset=dataset, query=query, variables=variables, checks=checks)
    return DatasetItem.objects.create(dataset=dataset, query=query or "", variables=variables, checks=checks,
                                      note=note, source_task=source_task)


def dataset_item_update(*, item: DatasetItem, **changes) -> DatasetItem:
    allowed = {"query", "variables", "checks", "note"}
    for name, value in changes.items():
        if name not in allowed:
            raise EvalError(f"{name} cannot be changed", field=name)
        setattr(item, name, value)
    dataset_item_validate(dataset=item.dataset, query=item.query, variables=item.variables, checks=item.checks)
    item.save()
    return item


def dataset_item_delete(*, item: DatasetItem) -> None:
    item.delete()


def dataset_item_from_task(*, user, task, dataset: Dataset, checks: list | None = None,
                           note: str = "") -> DatasetItem:
    """"Add to dataset": a task someone rated 👎 becomes an item with its query, so the next
    prompt version can be measured on exactly what went wrong."""
    feedback = TaskFeedback.objects.filter(task=task, rating=TaskFeedback.Rating.DOWN).order_by(
        "-updated_at").first()
    if feedback is None:
        raise Conflict("only a task rated 👎 can be added to a dataset", code="not_rated_down")
    if DatasetItem.objects.filter(dataset=dataset, source_task=task).exists():
        raise Conflict(f"this task is already an item of {dataset.name}", code="item_exists")
    default_note = f"From task {task.pk}" + (f": {feedback.comment}" if feedback.comment else "")
    return dataset_item_create(dataset=dataset, query=task.query, checks=checks, note=(note or default_note)[:500],
                               source_task=task)


@transaction.atomic
def eval_run_create(*, owner, dataset: Dataset, version: PromptVersion, concurrency: int | None = None,
                    start: bool = True) -> EvalRun:
    """A run of ``version`` over every item of ``dataset``; with ``start`` its Celery jobs
    are sent after the commit (``concurrency`` of them, EVAL_CONCURRENCY by default)."""
    if dataset.template_id and dataset.template_id != version.template_id:
        raise EvalError(f"dataset {dataset.name} gives variables of prompt {dataset.template.slug}, "
                        f"not of {version.template.slug}", field="version")
    items = list(dataset.items.values_list("pk", flat=True))
    if not items:
        raise EvalError(f"dataset {dataset.name} has no items", field="dataset")
    workers = max(1, min(int(concurrency or settings.EVAL_CONCURRENCY), settings.EVAL_CONCURRENCY, len(items)))
    # In the dataset's workspace (a shipped dataset's run: the owner's default workspace).
    run = EvalRun.objects.create(owner=owner, workspace_id=dataset.workspace_id, dataset=dataset, version=version,
                                 concurrency=workers, total=len(items), provider=settings.LLM_PROVIDER,
                                 model=settings.LLM_MODEL)
    EvalResult.objects.bulk_create([EvalResult(run=run, item_id=item_id) for item_id in items])
    if start:
        transaction.on_commit(lambda: eval_run_enqueue(run_id=run.pk, jobs=workers))
    return run


def eval_run_enqueue(*, run_id: int, jobs: int) -> None:
    from evals.jobs import run_eval

    for _ in range(jobs):
        run_eval.delay(run_id)


def task_feedback_set(*, user, task, rating: int, comment: str = "") -> tuple[TaskFeedback, bool]:
    """Create or replace ``user``'s feedback on ``task``; returns (feedback, created)."""
    if rating not in TaskFeedback.Rating.values:
        raise EvalError("rating is 1 (👍) or -1 (👎)", field="rating")
    for _ in range(2):  # a concurrent first rating by the same user: the second try updates it
        try:
            with transaction.atomic():
                return TaskFeedback.objects.update_or_create(task=task, user=user,
                                                             defaults={"rating": rating, "comment": comment or ""})
        except IntegrityError:
            continue
    raise Conflict("the feedback changed concurrently; send it again")


def task_feedback_delete(*, user, task) -> bool:
    deleted, _ = TaskFeedback.objects.filter(task=task, user=user).delete()
    return bool(deleted)
