"""Reads of the evals app: what a user may see, comparisons, feedback per prompt version.

Visibility: a user sees the datasets and runs of their workspaces plus the shipped datasets
(no owner); staff see everything. Another workspace's object is "not found", never
"forbidden"; changing a dataset takes the prompt_editor role in its workspace, starting an eval
run the operator role in the workspace the run goes to (403 below it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Q, QuerySet

from agentos.api import NotFound
from evals.models import Dataset, DatasetItem, EvalResult, EvalRun, TaskFeedback
from prompts.models import PromptVersion


def datasets_for_user(*, user) -> QuerySet[Dataset]:
    from workspaces.access import is_superuser, member_workspace_ids

    datasets = Dataset.objects.select_related("owner", "template")
    if is_superuser(user):
        return datasets
    return datasets.filter(Q(workspace__in=member_workspace_ids(user)) | Q(owner__isnull=True))


def dataset_get_for_user(*, user, dataset_id, write: bool = False) -> Dataset:
    """The dataset if ``user`` may read it (or, with ``write``, change it: shipped datasets
    are changed by staff only)."""
    try:
        dataset = datasets_for_user(user=user).get(pk=int(dataset_id))
    except (Dataset.DoesNotExist, ValueError, TypeError):
        raise NotFound("dataset not found")
    if write and not user.is_staff:
        if dataset.owner_id is None:
            raise NotFound("dataset not found")
        from workspaces.access import require_role
        from workspaces.models import Role

        require_role(user, dataset.workspace_id, Role.PROMPT_EDITOR, what="dataset")
    return dataset


def dataset_get_for_run(*, user, dataset_id) -> Dataset:
    """The dataset if ``user`` may start an eval run over it. A run makes paid model calls and
    is written to the dataset's workspace (a shipped dataset's run: the caller's default
    workspace), so it takes the operator role there: NotFound for a dataset the user cannot
    see, Forbidden below operator."""
    from workspaces.access import require_role, workspace_for_write
    from workspaces.models import Role

    dataset = dataset_get_for_user(user=user, dataset_id=dataset_id)
    if dataset.workspace_id is None:
        workspace_for_write(user=user, at_least=Role.OPERATOR)
    else:
        require_role(user, dataset.workspace_id, Role.OPERATOR, what="dataset")
    return dataset


def dataset_item_get(*, dataset: Dataset, item_id) -> DatasetItem:
    """An item of ``dataset`` by the id of a URL; NotFound for any other value (like the
    datasets' and runs' ids, so an id Python cannot read as a number is a 404, not a 500)."""
    try:
        return dataset.items.get(pk=int(item_id))
    except (DatasetItem.DoesNotExist, ValueError, TypeError):
        raise NotFound("item not found")


def dataset_by_name(*, name: str, owner=None) -> Dataset:
    """For the command line: the shipped dataset ``name``, else the only one of that name."""
    found = list(Dataset.objects.filter(name=name, **({"owner__username": owner} if owner else {}))
                 .select_related("owner")[:10])
    shipped = [dataset for dataset in found if dataset.owner_id is None]
    if shipped and not owner:
        return shipped[0]
    if len(found) == 1:
        return found[0]
    if not found:
        raise NotFound(f"no dataset named {name!r}")
    owners = ", ".join(sorted(dataset.owner.username for dataset in found if dataset.owner))
    raise NotFound(f"several datasets are named {name!r} (owners: {owners}); name the owner")


def eval_runs_for_user(*, user) -> QuerySet[EvalRun]:
    from workspaces.access import scope

    return scope(EvalRun.objects.select_related("dataset", "version__template", "owner"), user)


def eval_run_get_for_user(*, user, run_id) -> EvalRun:
    try:
        return eval_runs_for_user(user=user).get(pk=int(run_id))
    except (EvalRun.DoesNotExist, ValueError, TypeError):
        raise NotFound("eval run not found")


def run_results(*, run: EvalRun) -> list[EvalResult]:
    return list(run.results.select_related("item").order_by("item_id"))


@dataclass
class ComparedItem:
    item_id: int
    summary: str
    a: EvalResult | None
    b: EvalResult | None

    @property
    def differs(self) -> bool:
        verdict_a = self.a.passed if self.a else None
        verdict_b = self.b.passed if self.b else None
        return verdict_a != verdict_b


def compare_runs(*, a: EvalRun, b: EvalRun) -> list[ComparedItem]:
    """The items of both runs side by side (item order), those whose verdict differs first."""
    by_item_a = {result.item_id: result for result in run_results(run=a)}
    by_item_b = {result.item_id: result for result in run_results(run=b)}
    rows = []
    for item_id in sorted(set(by_item_a) | set(by_item_b)):
        result = by_item_a.get(item_id) or by_item_b.get(item_id)
        rows.append(ComparedItem(item_id, result.item.summary, by_item_a.get(item_id), by_item_b.get(item_id)))
    return sorted(rows, key=lambda row: (not row.differs, row.item_id))


def feedback_by_label(*, labels: list[str], since: datetime | None = None) -> dict[str, dict[str, int]]:
    """{"<slug>@<n>": {"up", "down"}}: feedback on the tasks in which each version ran a step
    (a task counts once per version however many of its steps used it)."""
    labels = list(dict.fromkeys(labels))
    return dict(zip(labels, feedback_by_window(windows=[(label, since) for label in labels]), strict=True))


def feedback_by_window(*, windows: list[tuple[str, datetime | None]]) -> list[dict[str, int]]:
    """For each ``(label, since)``, in order, ``{"up", "down"}``: the feedback on the tasks
    created since ``since`` (None: ever) in which that version ran a step, a task counted once
    per version. One query however many windows (a page of rollouts, each with its start).

    Driven from the feedback rows (few) into each task's steps through the (task, index)
    unique index, instead of scanning every step for the labels.
    """
    if not windows:
        return []
    from tasks.models import Step, Task

    feedback, step, task = TaskFeedback._meta.db_table, Step._meta.db_table, Task._meta.db_table
    # Table names from the models; every value is a parameter.
    sql = (f"SELECT w.n, count(*) FILTER (WHERE f.rating > 0), count(*) FILTER (WHERE f.rating < 0) "  # noqa: S608
           f"FROM {feedback} f JOIN {task} t ON t.id = f.task_id "
           f"CROSS JOIN LATERAL (SELECT DISTINCT prompt_label FROM {step} "
           f"WHERE task_id = f.task_id AND prompt_label <> '') s "
           f"JOIN unnest(%s::text[], %s::timestamptz[]) WITH ORDINALITY AS w(label, since, n) "
           f"ON w.label = s.prompt_label AND (w.since IS NULL OR t.created_at >= w.since) GROUP BY w.n")
    with connection.cursor() as cursor:
        cursor.execute(sql, [[label for label, _ in windows], [since for _, since in windows]])
        rows = cursor.fetchall()
    counts = [{"up": 0, "down": 0} for _ in windows]
    for n, up, down in rows:
        counts[n - 1] = {"up": up, "down": down}
    return counts


def version_feedback(*, versions: list[PromptVersion], since: datetime | None = None) -> dict[int, dict[str, int]]:
    """feedback_by_label keyed by version id."""
    by_label = feedback_by_label(labels=[version.label for version in versions], since=since)
    return {version.pk: by_label[version.label] for version in versions}
