"""The run export document: its format, and the strict check every imported document passes.

One JSON object (``FORMAT``, ``VERSION``)::

    {"format": "agentos.run", "version": 1,
     "source":  {"task_id", "exported_at", "forked_from", "fork_edit", "imported_at"},
     "task":    {"query", "status", "trigger", "trigger_details", "options", "step_budget",
                 "result", "error", "created_at", "finished_at"},
     "engine":  {"agents": [...], "approval_tools": [...], "allow_human", "context_budget",
                 "max_subtasks"},
     "steps":   [{"index", "kind", "agent", "subtask", "status", "input", "output", "error",
                  "prompt_version", "context", "context_hash", "tokens_in", "tokens_out",
                  "tokens_estimated", "duration_ms", "created_at", "provider", "model",
                  "tokens_cached", "cost_usd"}, ...],
     "prompts": [{"label", "slug", "number", "body", "temperature", "max_tokens",
                  "response_schema", "required_variables", "optional_variables"}, ...],
     "tools":   [{"name", "description", "parameters", "side_effects", "requires_approval"}, ...]}

``source`` describes the copy that was exported (its id, when, where it came from); the
rest is the run, and an export of an imported run equals the original in everything but
``source`` (see docs/time-travel.md). ``engine`` holds the inputs of ``decide`` besides the
log, as they were at export time, so a replay needs nothing but the document.

:func:`check_document` raises :class:`DocumentError` (message, dotted ``field``, ``code``) for
anything but a well-formed document; it has no Django import, so the API, the command and
the tests share it. Database-dependent checks (options, prompt bodies) happen on import.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from tasks.engine.log import terminal_status
from tasks.engine.state import StepRecord

FORMAT = "agentos.run"
VERSION = 1
MAX_STEPS = 10_000
MAX_PROMPTS = 200
MAX_TOOLS = 200
MAX_AGENTS = 50
MAX_TEXT = 200_000  # characters of one text field (query, result, error, prompt body)
MAX_INT = 2_147_483_647  # PositiveIntegerField

STEP_KINDS = frozenset({"trigger", "plan", "llm", "tool", "human_request", "human_response", "summary", "synthesis",
                        "pause", "resume", "cancel", "error", "result", "provider_wait", "retry"})
FINISHED = frozenset({"completed", "failed", "cancelled"})
UNFINISHED = frozenset({"queued", "running", "paused", "waiting_human", "waiting_provider"})
TRIGGERS = frozenset({"api", "page", "cli", "webhook", "schedule"})
SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
HASH = re.compile(r"^[0-9a-f]{64}$")

TOP_KEYS = {"format", "version", "source", "task", "engine", "steps", "prompts", "tools"}
TASK_KEYS = {"query", "status", "trigger", "trigger_details", "options", "step_budget", "result", "error",
             "created_at", "finished_at"}
ENGINE_KEYS = {"agents", "approval_tools", "allow_human", "context_budget", "max_subtasks"}
AGENT_KEYS = {"name", "description", "prompt_slug", "allowed_tools", "max_steps"}
STEP_KEYS = {"index", "kind", "agent", "subtask", "status", "input", "output", "error", "prompt_version", "context",
             "context_hash", "tokens_in", "tokens_out", "tokens_estimated", "duration_ms", "created_at",
             "provider", "model", "tokens_cached", "cost_usd"}
# Keys a document of an earlier release of format version 1 may lack, with their values then.
STEP_OPTIONAL_KEYS = {"tokens_estimated": False, "provider": "", "model": "", "tokens_cached": 0, "cost_usd": None}
COST = re.compile(r"^\d{1,6}(\.\d{1,8})?$")  # Step.cost_usd: 14 digits, 8 after the point
PROMPT_KEYS = {"label", "slug", "number", "body", "temperature", "max_tokens", "response_schema",
               "required_variables", "optional_variables"}
TOOL_KEYS = {"name", "description", "parameters", "side_effects", "requires_approval"}


class DocumentError(ValueError):
    """The document is not a run export this service accepts."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid_export") -> None:
        super().__init__(message)
        self.message, self.field, self.code = message, field, code


def _object(value: Any, field: str, keys: set[str], *, required: set[str] | None = None) -> dict:
    if not isinstance(value, dict):
        raise DocumentError("must be a JSON object", field=field)
    unknown = sorted(set(value) - keys)
    if unknown:
        raise DocumentError(f"unknown key {unknown[0]!r}", field=f"{field}.{unknown[0]}" if field else unknown[0])
    missing = sorted((keys if required is None else required) - set(value))
    if missing:
        raise DocumentError("is required", field=f"{field}.{missing[0]}" if field else missing[0], code="required")
    return value


def _text(value: Any, field: str, *, limit: int = MAX_TEXT, blank: bool = True) -> str:
    if not isinstance(value, str):
        raise DocumentError("must be a string", field=field)
    if len(value) > limit:
        raise DocumentError(f"is longer than {limit} characters", field=field, code="max_length")
    if not blank and not value.strip():
        raise DocumentError("must not be blank", field=field, code="blank")
    return value


def _integer(value: Any, field: str, *, low: int = 0, high: int = MAX_INT) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DocumentError("must be an integer", field=field)
    if not low <= value <= high:
        raise DocumentError(f"must be between {low} and {high}", field=field)
    return value


def _boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise DocumentError("must be true or false", field=field)
    return value


def _list(value: Any, field: str, limit: int) -> list:
    if not isinstance(value, list):
        raise DocumentError("must be a list", field=field)
    if len(value) > limit:
        raise DocumentError(f"has more than {limit} items", field=field, code="max_length")
    return value


def _names(value: Any, field: str, limit: int = MAX_TOOLS) -> list[str]:
    for position, item in enumerate(_list(value, field, limit)):
        _text(item, f"{field}[{position}]", limit=100, blank=False)
    return value


def _when(value: Any, field: str, *, optional: bool = False) -> datetime | None:
    if value is None and optional:
        return None
    text = _text(value, field, limit=64)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DocumentError("must be an ISO 8601 date and time", field=field) from None
    if moment.tzinfo is None:
        raise DocumentError("must include a time zone", field=field)
    return moment


def _slug(value: Any, field: str, limit: int) -> str:
    if not SLUG.match(_text(value, field, limit=limit, blank=False)):
        raise DocumentError("must be a slug (letters, digits, - and _)", field=field)
    return value


def check_document(document: Any, *, require_finished: bool = True) -> dict:
    """``document`` if it is a well-formed run export; DocumentError otherwise. An import
    needs a finished run (``require_finished``); a replay also reads unfinished ones."""
    _object(document, "", TOP_KEYS, required=TOP_KEYS - {"source", "tools"})
    if document["format"] != FORMAT:
        raise DocumentError(f"not a run export (format must be {FORMAT!r})", field="format")
    if document["version"] != VERSION:
        raise DocumentError(f"unsupported export version {document['version']!r}; this service reads version "
                            f"{VERSION}", field="version", code="unsupported_version")
    if document.get("source") is not None and not isinstance(document["source"], dict):
        raise DocumentError("must be a JSON object", field="source")
    _check_task(document["task"], require_finished)
    _check_engine(document["engine"])
    labels = _check_prompts(document["prompts"])
    _check_tools(document.get("tools", []))
    _check_steps(document["steps"], labels)
    status = document["task"]["status"]
    ended = terminal_status(records_of(document))
    if ended != (status if status in FINISHED else None):
        raise DocumentError(f"the task is {status} but its log ends {'as ' + ended if ended else 'unfinished'}",
                            field="task.status", code="inconsistent_log")
    return document


def _check_task(task: Any, require_finished: bool) -> None:
    _object(task, "task", TASK_KEYS)
    _text(task["query"], "task.query", blank=False)
    if task["status"] not in (FINISHED if require_finished else FINISHED | UNFINISHED):
        raise DocumentError(f"only finished runs can be imported ({', '.join(sorted(FINISHED))})",
                            field="task.status", code="run_not_finished")
    if task["trigger"] not in TRIGGERS:
        raise DocumentError(f"must be one of {', '.join(sorted(TRIGGERS))}", field="task.trigger")
    for name in ("trigger_details", "options"):
        if not isinstance(task[name], dict):
            raise DocumentError("must be a JSON object", field=f"task.{name}")
    _integer(task["step_budget"], "task.step_budget", low=1, high=100_000)
    _text(task["result"], "task.result")
    _text(task["error"], "task.error")
    _when(task["created_at"], "task.created_at")
    _when(task["finished_at"], "task.finished_at", optional=True)


def _check_engine(engine: Any) -> None:
    _object(engine, "engine", ENGINE_KEYS)
    seen = set()
    for position, agent in enumerate(_list(engine["agents"], "engine.agents", MAX_AGENTS)):
        field = f"engine.agents[{position}]"
        _object(agent, field, AGENT_KEYS)
        name = _slug(agent["name"], f"{field}.name", 50)
        if name in seen:
            raise DocumentError(f"agent {name!r} appears twice", field=f"{field}.name")
        seen.add(name)
        _text(agent["description"], f"{field}.description", limit=10_000)
        _slug(agent["prompt_slug"], f"{field}.prompt_slug", 100)
        _names(agent["allowed_tools"], f"{field}.allowed_tools")
        _integer(agent["max_steps"], f"{field}.max_steps", low=1, high=100)
    _names(engine["approval_tools"], "engine.approval_tools")
    _boolean(engine["allow_human"], "engine.allow_human")
    _integer(engine["context_budget"], "engine.context_budget", low=1)
    _integer(engine["max_subtasks"], "engine.max_subtasks", low=1, high=100)


def _check_prompts(prompts: Any) -> set[str]:
    labels: set[str] = set()
    for position, prompt in enumerate(_list(prompts, "prompts", MAX_PROMPTS)):
        field = f"prompts[{position}]"
        _object(prompt, field, PROMPT_KEYS)
        slug = _slug(prompt["slug"], f"{field}.slug", 100)
        number = _integer(prompt["number"], f"{field}.number", low=1)
        label = _text(prompt["label"], f"{field}.label", limit=120)
        if label != f"{slug}@{number}":
            raise DocumentError(f"must be {slug}@{number}", field=f"{field}.label")
        if label in labels:
            raise DocumentError(f"prompt {label} appears twice", field=f"{field}.label")
        labels.add(label)
        _text(prompt["body"], f"{field}.body", blank=False)
        temperature = prompt["temperature"]
        if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                                        or not 0 <= temperature <= 2):
            raise DocumentError("must be null or a number from 0 to 2", field=f"{field}.temperature")
        if prompt["max_tokens"] is not None:
            _integer(prompt["max_tokens"], f"{field}.max_tokens", low=1)
        if prompt["response_schema"] is not None and not isinstance(prompt["response_schema"], dict):
            raise DocumentError("must be null or a JSON object", field=f"{field}.response_schema")
        _names(prompt["required_variables"], f"{field}.required_variables")
        _names(prompt["optional_variables"], f"{field}.optional_variables")
    return labels


def _check_tools(tools: Any) -> None:
    for position, tool in enumerate(_list(tools, "tools", MAX_TOOLS)):
        field = f"tools[{position}]"
        _object(tool, field, TOOL_KEYS)
        _text(tool["name"], f"{field}.name", limit=100, blank=False)
        _text(tool["description"], f"{field}.description", limit=10_000)
        if not isinstance(tool["parameters"], dict):
            raise DocumentError("must be a JSON object", field=f"{field}.parameters")
        _boolean(tool["side_effects"], f"{field}.side_effects")
        _boolean(tool["requires_approval"], f"{field}.requires_approval")


def _check_steps(steps: Any, labels: set[str]) -> None:
    if not _list(steps, "steps", MAX_STEPS):
        raise DocumentError("a run has at least one step", field="steps")
    for position, step in enumerate(steps):
        _check_step(step, position, labels)


def _check_step(step: Any, position: int, labels: set[str]) -> None:
    field = f"steps[{position}]"
    _object(step, field, STEP_KEYS, required=STEP_KEYS - set(STEP_OPTIONAL_KEYS))
    _check_accounting(step, field)
    if _integer(step["index"], f"{field}.index") != position:
        raise DocumentError(f"must be {position} (steps are numbered 0, 1, 2, ... in order)",
                            field=f"{field}.index")
    if step["kind"] not in STEP_KINDS:
        raise DocumentError(f"unknown step kind {step['kind']!r}", field=f"{field}.kind")
    if step["status"] not in ("ok", "error"):
        raise DocumentError("must be ok or error", field=f"{field}.status")
    if step["agent"] is not None:
        _text(step["agent"], f"{field}.agent", limit=50)
    if step["subtask"] is not None:
        _text(step["subtask"], f"{field}.subtask", limit=64)
    if not isinstance(step["input"], dict):
        raise DocumentError("must be a JSON object", field=f"{field}.input")
    if step["error"] is not None:
        _text(step["error"], f"{field}.error")
    label = step["prompt_version"]
    if label is not None:
        _text(label, f"{field}.prompt_version", limit=120)
    _check_context(step["context"], label, labels, position, field)
    if step["context_hash"] and not HASH.match(_text(step["context_hash"], f"{field}.context_hash", limit=64)):
        raise DocumentError("must be a sha256 hex digest or empty", field=f"{field}.context_hash")
    _when(step["created_at"], f"{field}.created_at")


def _check_accounting(step: dict, field: str) -> None:
    """Tokens, time, provider, model and cost of a step (the keys a document of an earlier
    release may lack take their defaults)."""
    for name, default in STEP_OPTIONAL_KEYS.items():
        step.setdefault(name, default)
    for name in ("tokens_in", "tokens_out", "tokens_cached", "duration_ms"):
        _integer(step[name], f"{field}.{name}")
    if not isinstance(step["tokens_estimated"], bool):
        raise DocumentError("must be true or false", field=f"{field}.tokens_estimated")
    for name, limit in (("provider", 20), ("model", 120)):
        if not isinstance(step[name], str) or len(step[name]) > limit:
            raise DocumentError(f"must be text of at most {limit} characters", field=f"{field}.{name}")
    if step["cost_usd"] is not None and not (isinstance(step["cost_usd"], str) and COST.match(step["cost_usd"])):
        raise DocumentError('must be null or a decimal number of US dollars as text, such as "0.00125"',
                            field=f"{field}.cost_usd")


def _check_context(context: Any, label: str | None, labels: set[str], index: int, field: str) -> None:
    if context is None:
        return
    if not isinstance(context, dict):
        raise DocumentError("must be null or a JSON object", field=f"{field}.context")
    if "version_id" in context:
        raise DocumentError("an export names prompt versions by label (prompt_version), not by id",
                            field=f"{field}.context.version_id")
    history = context.get("steps", [])
    for position, earlier in enumerate(_list(history, f"{field}.context.steps", MAX_STEPS)):
        _integer(earlier, f"{field}.context.steps[{position}]", high=max(index - 1, 0))
        if earlier >= index:
            raise DocumentError("a step's context can only name earlier steps", field=f"{field}.context.steps")
    if context.get("variables") is not None and not isinstance(context["variables"], dict):
        raise DocumentError("must be a JSON object", field=f"{field}.context.variables")
    if label and label not in labels and context.get("variables") is not None:
        raise DocumentError(f"names prompt {label}, which is not among the document's prompts",
                            field=f"{field}.prompt_version")


def records_of(document: dict) -> list[StepRecord]:
    """The document's steps as the engine's records."""
    return [StepRecord(step["index"], step["kind"], step["status"], step["agent"] or "", step["subtask"] or "",
                       step["input"], step["output"], step["error"] or "") for step in document["steps"]]
