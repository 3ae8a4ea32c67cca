"""The context window on the Django side: step rows as engine records, and the exact
messages of any LLM step rebuilt from what the step stored (see tasks/engine/context.py).

An LLM step stores its prompt version id, the template variables and the indexes of the
steps its history was built from (``Step.context``), plus ``context_hash``, the sha256 of
the messages sent. Storage stays linear in the number of steps; ``messages_for_step``
renders the same version with the same variables and rebuilds the same history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Canonical:
    """Data in canonical form with its JSON text, made once and reused (e.g. an agent's tool
    list, the same on every step of a slice). Never modify ``value``."""

    text: str
    value: Any

    @classmethod
    def of(cls, value: Any) -> Canonical:
        text = canonical_json(value)
        return cls(text, json.loads(text))


def canonical_pair(value: dict[str, Any]) -> tuple[str, dict]:
    """``(canonical_json(value), canonical(value))`` for a dict with string keys, some of whose
    values may be Canonical: their text and value are used as they are, and each run of
    other keys (in sorted order) is serialised and parsed once."""
    if not any(isinstance(item, Canonical) for item in value.values()):
        text = canonical_json(value)
        return text, json.loads(text)
    pieces, data, run = [], {}, {}

    def flush() -> None:
        if run:
            text = canonical_json(run)
            pieces.append(text[1:-1])  # the items, as they appear in the whole dict's text
            data.update(json.loads(text))
            run.clear()

    for key in sorted(value):  # string keys, as json.dumps(sort_keys=True) orders them
        item = value[key]
        if isinstance(item, Canonical):
            flush()
            pieces.append(f"{json.dumps(key, ensure_ascii=False)}: {item.text}")
            data[key] = item.value
        else:
            run[key] = item
    flush()
    return "{" + ", ".join(pieces) + "}", data


RECORD_FIELDS = ("index", "kind", "status", "agent", "subtask_id", "input", "output", "error")


def record_from_step(step: Step) -> StepRecord:
    return StepRecord(*(getattr(step, name) for name in RECORD_FIELDS[:5]), step.input or {}, step.output,
                      step.error)


def task_records(task_id: Any) -> list[StepRecord]:
    """A task's step log as engine records, in order: only the fields a record has (not the
    stored LLM context, the largest column), and no model instances."""
    rows = Step.objects.filter(task_id=task_id).order_by("index").values_list(*RECORD_FIELDS)
    return [StepRecord(index, kind, status, agent, subtask, data or {}, output, error)
            for index, kind, status, agent, subtask, data, output, error in rows]


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
    """The exact messages of an LLM step, for the API and the pages (None for other steps)."""
    return rebuild_messages(step)


def messages_match(step: Step) -> bool:
    """True when the rebuilt messages hash to what the step recorded at call time."""
    messages = rebuild_messages(step)
    return messages is not None and messages_hash(messages) == step.context_hash
