"""The task timeline: steps grouped by subtask and agent, each prepared for its template.

There is one renderer. The page renders the groups with ``pages/_group.html`` and each step
with ``pages/_step.html``; the live path (``live.steps_fragment``) renders newly committed
steps with the same two templates and the browser only inserts what the server produced.
Whether a step opens a new group depends only on the step before it, so the page built
at once and the page built live step by step come out identical.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _

from tasks.pages.markdown import render_markdown

log = logging.getLogger(__name__)

KIND_LABELS = {
    "trigger": _("Started"),
    "plan": _("Plan"),
    "llm": _("Model decision"),
    "tool": _("Tool call"),
    "human_request": _("Question for you"),
    "human_response": _("Your answer"),
    "summary": _("Summary"),
    "synthesis": _("Synthesis"),
    "pause": _("Paused"),
    "resume": _("Resumed"),
    "cancel": _("Cancelled"),
    "error": _("Error"),
    "result": _("Result"),
    "provider_wait": _("Waiting for the model provider"),
    "retry": _("Retried"),
}


def pretty_json(value: Any) -> str:
    """Indented JSON for a <pre> block (escaped by the template like any other text)."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def subtasks_from(steps: list[dict]) -> dict[str, dict]:
    """Subtask id -> {id, description, agent} from the latest successful plan step."""
    for step in reversed(steps):
        if step["kind"] == "plan" and step["status"] == "ok" and isinstance(step.get("output"), dict):
            items = step["output"].get("subtasks") or []
            found: dict[str, dict] = {}
            for number, item in enumerate(items, start=1):
                if isinstance(item, dict):
                    ident = str(item.get("id") or f"s{number}")
                    found.setdefault(ident, {"id": ident, "description": str(item.get("description", "")),
                                             "agent": str(item.get("agent", ""))})
            return found
    return {}


def group_key(step: dict) -> str:
    """Steps of one subtask (and its agent) share a group; task-level steps share the "" group."""
    subtask = step.get("subtask") or ""
    return f"{subtask}|{step.get('agent') or ''}" if subtask else ""


def group_view(step: dict, subtasks: dict[str, dict]) -> dict:
    subtask_id = step.get("subtask") or ""
    info = subtasks.get(subtask_id, {})
    return {
        "key": group_key(step),
        "subtask": subtask_id,
        "agent": step.get("agent") or info.get("agent", ""),
        "description": info.get("description", ""),
    }


def _as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _kind_details(step: dict) -> dict:
    """What the step template shows for this kind, beyond the common header."""
    kind, data_in, data_out = step["kind"], _as_dict(step.get("input")), step.get("output")
    out = _as_dict(data_out)
    details: dict[str, Any] = {}
    if kind == "trigger":
        details["trigger"] = data_in.get("trigger", "")
    elif kind == "plan":
        details["subtasks"] = [item for item in out.get("subtasks") or [] if isinstance(item, dict)]
    elif kind == "llm":
        details["action"] = out.get("action", "")
        details["reason"] = out.get("reason", "")
        details["action_json"] = pretty_json(data_out) if data_out is not None else ""
    elif kind == "tool":
        details["tool"] = data_in.get("tool") or data_in.get("name") or ""
        details["arguments_json"] = pretty_json(data_in.get("arguments", data_in))
        # A failed call has no result, only its one-line error (shown for every kind).
        ok = step.get("status") != "error" and data_out is not None
        details["result_json"] = pretty_json(out["result"] if "result" in out else data_out) if ok else ""
    elif kind == "human_request":
        details["question"] = data_in.get("question") or out.get("question", "")
        details["choices"] = data_in.get("choices") or []
        details["tool_call_json"] = pretty_json(data_in["tool_call"]) if data_in.get("tool_call") else ""
        details["reason"] = data_in.get("reason", "")
    elif kind == "human_response":
        details["answer"] = data_in.get("answer") or out.get("answer") or ""
        approve = data_in.get("approve", out.get("approve"))
        details["approve"] = approve
        details["comment"] = data_in.get("comment") or out.get("comment") or ""
    elif kind == "summary":
        details["summary"] = out.get("summary") or (data_out if isinstance(data_out, str) else "")
    elif kind == "provider_wait":
        details["next_try_at"] = data_in.get("next_try_at", "")
        details["attempt"] = data_in.get("attempt", "")
    elif kind in ("synthesis", "result"):
        text = out.get("result") if "result" in out else (data_out if isinstance(data_out, str) else "")
        details["result_html"] = render_markdown(text or "")
    return details


def step_view(step: dict, messages: list[dict] | None = None) -> dict:
    """The template context of one step (``step`` is tasks.presenters.step_to_dict output)."""
    known = step["kind"] in ("trigger", "plan", "llm", "tool", "human_request", "human_response", "summary",
                             "synthesis", "result", "pause", "resume", "cancel", "provider_wait", "retry")
    return {
        **step,
        "kind_label": KIND_LABELS.get(step["kind"], step["kind"]),
        "failed": step.get("status") == "error",
        "details": _kind_details(step),
        # The raw record behind a collapsed toggle: the full audit trail for every kind.
        "input_json": pretty_json(step.get("input")) if step.get("input") else "",
        "output_json": pretty_json(step.get("output")) if step.get("output") is not None else "",
        "show_raw_open": not known,
        "messages": [{"role": m.get("role", ""), "content": str(m.get("content", ""))} for m in messages or []],
        # Model calls, and the provider waits, pauses and failures that recorded the call they were for.
        "is_model_call": bool(step.get("prompt_version")),
    }


def messages_for(step_model: Any) -> list[dict]:
    """The exact messages of an LLM step, rebuilt from what the step stored (factor 3)."""
    if not step_model.prompt_label:
        return []
    try:
        from tasks.context import messages_for_step
    except ImportError:
        return []
    try:
        return list(messages_for_step(step_model) or [])
    except Exception:
        log.exception("could not rebuild the messages of step %s", step_model)
        return []


def timeline_entries(step_models: list[Any], *, previous: Any | None, subtasks: dict[str, dict],
                     fork_url: str | None = None, edited_step: int | None = None,
                     fork_before: int | None = None) -> list[dict]:
    """For each step: its index, its HTML and, when it opens a new group, that group's view.

    ``previous`` is the step just before the first one (None at the start of the log).
    ``fork_url``: the owner's "continue from here" page (each step links it with ``?at=N``;
    with ``fork_before``, only the steps before that index: the last step of a finished task
    has nothing after it to continue);
    ``edited_step``: the step a fork changed (an answer or a model output), marked as edited.
    """
    from tasks.presenters import step_to_dict

    entries = []
    last_key = group_key(step_to_dict(previous)) if previous is not None else None
    for model in step_models:
        step = step_to_dict(model)
        key = group_key(step)
        group = None
        if key != last_key:
            group, last_key = group_view(step, subtasks), key
        view = step_view(step, messages_for(model))
        forkable = fork_url and (fork_before is None or step["index"] < fork_before)
        view["fork_url"] = f"{fork_url}?at={step['index']}" if forkable else ""
        view["edited"] = edited_step is not None and step["index"] == edited_step
        html = render_to_string("pages/_step.html", {"step": view})
        entries.append({"index": step["index"], "group": group, "html": html})
    return entries


def render_group(group: dict, entries: list[dict] = ()) -> str:
    """A group's HTML with its steps; the live path renders it empty and appends steps to it."""
    return render_to_string("pages/_group.html", {"group": group, "entries": entries})


def render_timeline(entries: list[dict]) -> list[str]:
    """The whole timeline as a list of group HTML blocks (the initial page)."""
    blocks: list[str] = []
    current: dict | None = None
    members: list[dict] = []
    for entry in entries:
        if entry["group"] is not None:
            if current is not None:
                blocks.append(render_group(current, members))
            current, members = entry["group"], []
        members.append(entry)
    if current is not None:
        blocks.append(render_group(current, members))
    return blocks
