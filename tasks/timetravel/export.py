"""Export a run as one JSON document, and import such a document as a finished run.

``task_export(task=...)`` -> the document (tasks/timetravel/document.py). Prompt versions
are named by label in the steps and carried whole in ``prompts``; tools by their schemas.

``task_import(owner=..., document=...)`` checks the document strictly, then in ONE
transaction: matches each prompt version by content (template slug, body, temperature,
max_tokens; a missing template or version is created, never activated, when ``owner`` may
edit prompts, else the import is refused with 403), creates the task (finished, owned by
``owner``, never queued) and writes its steps through the step store's bulk path
(``tasks.store.steps_copy``). Any refusal leaves nothing behind.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agentos.api import ApplicationError
from tasks.context import canonical
from tasks.engine.derive import subtask_results
from tasks.engine.state import AgentInfo
from tasks.models import AgentSpec, Step, Task
from tasks.timetravel.document import FORMAT, VERSION, DocumentError, check_document, records_of


def when(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def enabled_agents() -> dict[str, AgentInfo]:
    return {spec.name: AgentInfo(spec.name, spec.description, spec.prompt_slug, tuple(spec.allowed_tools or ()),
                                 spec.max_steps) for spec in AgentSpec.objects.filter(enabled=True).order_by("name")}


def engine_inputs(task: Task) -> dict:
    """What ``decide`` reads besides the log, as the runner would read it now."""
    from tasks.lookups import load_state

    agents = enabled_agents()
    state = load_state(Task(query=task.query, options=task.options, step_budget=task.step_budget), agents)
    return {
        "agents": [{"name": a.name, "description": a.description, "prompt_slug": a.prompt_slug,
                    "allowed_tools": list(a.allowed_tools), "max_steps": a.max_steps} for a in agents.values()],
        "approval_tools": sorted(state.approval_tools),
        "allow_human": state.allow_human,
        "context_budget": state.context_budget,
        "max_subtasks": state.max_subtasks,
    }


def task_export(*, task: Task) -> dict:
    from prompts.models import PromptVersion

    steps = list(Step.objects.filter(task=task).order_by("index"))
    version_ids = {(s.context or {}).get("version_id") for s in steps if isinstance(s.context, dict)} - {None}
    versions = {v.pk: v for v in PromptVersion.objects.filter(pk__in=version_ids).select_related("template")}
    return {
        "format": FORMAT,
        "version": VERSION,
        "source": {
            "task_id": str(task.pk),
            "exported_at": when(timezone.now()),
            "forked_from": ({"task_id": str(task.forked_from_id), "step": task.forked_at_step}
                            if task.forked_at_step is not None else None),
            "fork_edit": task.fork_edit,
            "imported_at": when(task.imported_at),
        },
        "task": {
            "query": task.query, "status": task.status, "trigger": task.trigger,
            "trigger_details": task.trigger_details or {}, "options": task.options or {},
            "step_budget": task.step_budget, "result": task.result, "error": task.error,
            "created_at": when(task.created_at), "finished_at": when(task.finished_at),
        },
        "engine": engine_inputs(task),
        "steps": [_step(step, versions) for step in steps],
        "prompts": [_prompt(version) for version in sorted(versions.values(), key=lambda v: v.label)],
        "tools": _tools(steps),
    }


def _step(step: Step, versions: dict) -> dict:
    context = dict(step.context) if isinstance(step.context, dict) else None
    label = step.prompt_label or None
    if context is not None:
        version = versions.get(context.pop("version_id", None))
        label = version.label if version is not None else label
    return {
        "index": step.index, "kind": step.kind, "agent": step.agent or None, "subtask": step.subtask_id or None,
        "status": step.status, "input": step.input, "output": step.output, "error": step.error or None,
        "prompt_version": label, "context": context, "context_hash": step.context_hash,
        "tokens_in": step.tokens_in, "tokens_out": step.tokens_out, "tokens_estimated": step.tokens_estimated,
        "duration_ms": step.duration_ms, "created_at": when(step.created_at),
        "provider": step.provider, "model": step.model, "tokens_cached": step.tokens_cached,
        "cost_usd": None if step.cost_usd is None else _decimal_text(step.cost_usd),
    }


def _decimal_text(value: Decimal) -> str:
    """``Decimal("0.00125000")`` -> ``"0.00125"``; never an exponent."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _prompt(version) -> dict:
    template = version.template
    return {"label": version.label, "slug": template.slug, "number": version.number, "body": version.body,
            "temperature": version.temperature, "max_tokens": version.max_tokens,
            "response_schema": template.response_schema,
            "required_variables": list(template.required_variables or []),
            "optional_variables": list(template.optional_variables or [])}


def _tools(steps: list[Step]) -> list[dict]:
    """The schemas of the tools the run called or offered to the model: as the model saw them
    (the LLM steps' recorded variables), with the registry's flags."""
    from tools.registry import UnknownTool, get_tool

    seen: dict[str, dict] = {}
    for step in steps:
        if step.kind == "tool" and isinstance(step.input, dict) and step.input.get("tool"):
            seen.setdefault(str(step.input["tool"]), {})
        variables = (step.context or {}).get("variables") if isinstance(step.context, dict) else None
        for tool in (variables or {}).get("tools") or []:
            if isinstance(tool, dict) and tool.get("name"):
                seen[str(tool["name"])] = tool
    tools = []
    for name in sorted(seen):
        shown = seen[name]
        try:
            spec = get_tool(name)
        except UnknownTool:
            spec = None
        tools.append({"name": name,
                      "description": str(shown.get("description", spec.description if spec else "")),
                      "parameters": shown.get("parameters", spec.parameters if spec else {}) or {},
                      "side_effects": bool(spec and spec.side_effects),
                      "requires_approval": bool(spec and spec.requires_approval)})
    return tools


# --- import ----------------------------------------------------------------------------

def task_import(*, owner, document: Any, workspace=None) -> Task:
    """Store ``document`` as a finished run of ``owner``; ApplicationError (400) when it is
    not an acceptable export, and then nothing was written."""
    from tasks.options import clean_task_options
    from tasks.store import steps_copy
    from workspaces.access import may_edit_prompts

    try:
        check_document(document)
    except DocumentError as error:
        raise ApplicationError(error.message, field=error.field or None, code=error.code) from None
    data = document["task"]
    if len(data["query"]) > settings.QUERY_MAX_LENGTH:
        raise ApplicationError(f"query is longer than {settings.QUERY_MAX_LENGTH} characters", field="task.query",
                               code="max_length")
    try:
        options = clean_task_options(data["options"])
    except ApplicationError as error:
        raise ApplicationError(error.message, field=f"task.{error.field}", code=error.code) from None
    records = records_of(document)
    with transaction.atomic():
        # The prompt catalog is shared by every workspace: only its editors add to it.
        versions = _match_prompts(document["prompts"], owner, create=may_edit_prompts(owner))
        task = Task.objects.create(
            owner=owner, workspace=workspace, query=data["query"], trigger=data["trigger"],
            trigger_details=data["trigger_details"],
            options=options, step_budget=data["step_budget"], enqueued_at=None, imported_at=timezone.now())
        steps = [_step_row(step, versions) for step in document["steps"]]
        steps_copy(task=task, steps=steps, changes={
            "status": data["status"], "result": data["result"], "error": data["error"],
            "created_at": _parse(data["created_at"]), "finished_at": _parse(data["finished_at"]),
            "progress": 1.0 if data["status"] == "completed" else _progress(records, document),
            "intermediate_results": subtask_results(records), "total_steps": len(steps), "waiting_for": None,
            "cost_usd": sum((step.cost_usd for step in steps if step.cost_usd is not None), Decimal(0))})
    return task


def _parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def _progress(records, document: dict) -> float:
    from tasks.engine.derive import progress
    from tasks.timetravel.replay import state_from_document

    return progress(state_from_document(document, records))


def _step_row(step: dict, versions: dict) -> Step:
    context = step["context"]
    label = step["prompt_version"] or ""
    if context is not None:
        context = canonical(context)
        version = versions.get(label)
        if version is not None:
            context["version_id"] = version.pk
            label = version.label
    return Step(index=step["index"], kind=step["kind"], agent=step["agent"] or "", subtask_id=step["subtask"] or "",
                status=step["status"], input=step["input"], output=step["output"], error=step["error"] or "",
                prompt_label=label, context=context, context_hash=step["context_hash"] or "",
                tokens_in=step["tokens_in"], tokens_out=step["tokens_out"],
                tokens_estimated=step["tokens_estimated"], duration_ms=step["duration_ms"],
                created_at=_parse(step["created_at"]), provider=step["provider"], model=step["model"],
                tokens_cached=step["tokens_cached"],
                cost_usd=None if step["cost_usd"] is None else Decimal(step["cost_usd"]))


def _match_prompts(prompts: list[dict], owner, *, create: bool) -> dict:
    """Exported label -> a local PromptVersion with the same content: found, or created when
    ``create``. Without ``create`` a missing template or version is validated as its creation
    would be (a bad prompt is a 400), then the import is refused with Forbidden (403): a step
    kept unlinked with its recorded label would name this installation's version of that
    label, another prompt, whose cost and feedback figures would then count the step."""
    from prompts.errors import PromptError
    from prompts.models import PromptTemplate, PromptVersion
    from prompts.services import (
        prompt_template_create,
        prompt_version_create,
        validate_template_content,
        validate_version_content,
    )
    from workspaces.access import Forbidden

    found, missing = {}, []
    for position, prompt in enumerate(prompts):
        field = f"prompts[{position}]"
        try:
            template = PromptTemplate.objects.filter(slug=prompt["slug"]).first()
            version = None if template is None else (
                PromptVersion.objects.select_related("template")
                .filter(template=template, body=prompt["body"], temperature=prompt["temperature"],
                        max_tokens=prompt["max_tokens"]).order_by("number").first())
            if version is None and not create:  # checked like a creation, so a bad prompt stays a 400
                if template is None:
                    validate_template_content(slug=prompt["slug"], response_schema=prompt["response_schema"])
                    template = PromptTemplate(slug=prompt["slug"], required_variables=prompt["required_variables"],
                                              optional_variables=prompt["optional_variables"])
                validate_version_content(template=template, body=prompt["body"], label=prompt["label"])
                missing.append((field, prompt["label"]))
            elif version is None:
                if template is None:
                    template = prompt_template_create(
                        slug=prompt["slug"], description="Created by a run import.",
                        response_schema=prompt["response_schema"], required_variables=prompt["required_variables"],
                        optional_variables=prompt["optional_variables"])
                version = prompt_version_create(
                    template=template, body=prompt["body"], temperature=prompt["temperature"],
                    max_tokens=prompt["max_tokens"], created_by=owner,
                    note=f"Imported with a run export (was {prompt['label']}).")
        except PromptError as error:
            raise ApplicationError(error.message, field=f"{field}.{error.field or 'body'}",
                                   code="invalid_prompt") from None
        if version is not None:
            found[prompt["label"]] = version
    if missing:
        field, label = missing[0]
        labels = ", ".join(label for _, label in missing)
        raise Forbidden(f"this installation has no prompt version with the content of {labels}; importing the run "
                        "would add them to the shared prompts, which only staff and prompt editors may do",
                        field=field)
    return found
