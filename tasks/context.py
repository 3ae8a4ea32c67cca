"""The context window on the Django side: step rows as engine records, and the exact
messages of any LLM step rebuilt from what the step stored (see tasks/engine/context.py).

An LLM step stores its prompt version id, the template variables and the indexes of the
steps its history was built from (``Step.context``), plus ``context_hash``, the sha256 of
the messages sent. Storage stays linear in the number of steps; ``messages_for_step``
renders the same version with the same variables and rebuilds the same history.
"""

from __future__ import annotations

import json
from typing import Any

from tasks.engine.context import build_messages, messages_hash
from tasks.engine.state import StepRecord
from tasks.models import Step


def canonical_json(value: Any) -> str:
    """The JSON text ``canonical`` parses."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def canonical(value: Any) -> Any:
    """JSON-normalised data with sorted keys: identical before and after a jsonb round trip."""
    return json.loads(canonical_json(value))


RECORD_FIELDS = ("index", "kind", "status", "agent", "subtask_id", "input", "output", "error")


def record_from_step(step: Step) -> StepRecord:
    """The engine's record of a step; its data JSON-normalised as the database stores it, so
    a step just written and the same step read back are equal records."""
    return StepRecord(*(getattr(step, name) for name in RECORD_FIELDS[:5]), canonical(step.input or {}),
                      canonical(step.output), step.error)


def record_from_row(row: tuple | list) -> StepRecord:
    """The engine's record of a step read as the values of ``RECORD_FIELDS``, in order."""
    index, kind, status, agent, subtask, data, output, error = row
    return StepRecord(index, kind, status, agent, subtask, data or {}, output, error)


def task_records(task_id: Any) -> list[StepRecord]:
    """A task's step log as engine records, in order: only the fields a record has (not the
    stored LLM context, the largest column), and no model instances."""
    rows = Step.objects.filter(task_id=task_id).order_by("index").values_list(*RECORD_FIELDS)
    return [record_from_row(row) for row in rows]


def rebuild_messages(step: Step) -> list[dict] | None:
    """The messages the model saw at this LLM step, or None for steps without an LLM call."""
    from prompts.models import PromptVersion
    from prompts.services import prompt_version_render

    context = step.context or {}
    if not context.get("version_id"):
        return None
    version = PromptVersion.objects.select_related("template").get(pk=context["version_id"])
    rendered = prompt_version_render(version=version, variables=canonical(context.get("variables") or {}))
    indexes = [int(i) for i in context.get("steps") or []]
    rows = {s.index: s for s in Step.objects.filter(task_id=step.task_id, index__in=indexes)}
    records = [record_from_step(rows[i]) for i in indexes if i in rows]
    return build_messages(kind=context.get("kind", step.kind), system=rendered.text, query=step.task.query,
                          subtask=context.get("subtask"), records=records)


def messages_for_step(step: Step) -> list[dict] | None:
    """The exact messages of an LLM step, for the API and the pages (None for other steps):
    what the provider sent when it differed from the messages built (``context["sent"]``, e.g.
    with a schema instruction in JSON mode), else the messages rebuilt."""
    sent = (step.context or {}).get("sent")
    return sent if sent else rebuild_messages(step)


def messages_match(step: Step) -> bool:
    """True when the rebuilt messages hash to what the step recorded at call time."""
    messages = rebuild_messages(step)
    return messages is not None and messages_hash(messages) == step.context_hash
