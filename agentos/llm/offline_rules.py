"""The offline rule set: schema-valid JSON for each default prompt, chosen by plain rules.

This is not a language model. It reads the prompt's variables (query, subtask, tools, ...)
and the conversation so far, and applies fixed rules, so the whole pipeline (plan, agent
steps with real tool calls and human questions, summary, synthesis) runs without a network.

How an agent conversation is read: an assistant message whose content is a JSON action
(``{"action": "tool", ...}`` or ``{"action": "ask_human", ...}``) is a call; the next
non-assistant message is its result (a tool's output, or the person's answer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from agentos.llm import offline_text as t


@dataclass
class Conversation:
    tool_calls: list[str] = field(default_factory=list)
    tool_results: list[dict] = field(default_factory=list)  # {"tool", "ok", "content"}
    asked_human: bool = False
    human_answer: str | None = None
    notes: list[str] = field(default_factory=list)  # other text the agent was given


def _as_json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return None


def _failed(content: Any, text: str) -> bool:
    if isinstance(content, dict) and (content.get("ok") is False or ("error" in content and "result" not in content)):
        return True
    return text.lower().lstrip().startswith(("error", "tool error", "failed"))


def read_conversation(messages: list[dict]) -> Conversation:
    seen = Conversation()
    pending: str | None = None  # "tool:<name>" or "human" while waiting for the reply
    for message in messages:
        role, text = message.get("role"), str(message.get("content", ""))
        if role == "system":
            continue
        data = _as_json(text)
        if role == "assistant":
            action = data.get("action") if isinstance(data, dict) else None
            if action == "tool":
                seen.tool_calls.append(str(data.get("tool")))
                pending = f"tool:{data.get('tool')}"
            elif action == "ask_human":
                seen.asked_human, pending = True, "human"
            continue
        if pending and pending.startswith("tool:"):
            seen.tool_results.append({"tool": pending[5:], "ok": not _failed(data, text),
                                      "content": data if data is not None else text})
        elif pending == "human":
            seen.human_answer = text
        elif isinstance(data, dict) and "tool" in data and ("result" in data or "error" in data):
            seen.tool_results.append({"tool": str(data["tool"]), "ok": not _failed(data, text), "content": data})
        else:
            seen.notes.append(text)
        pending = None
    return seen


# --- plan -------------------------------------------------------------------------------

def pick_agent(text: str, agents: list[str]) -> str:
    found = set(t.words(text))
    if t.asks_for_arithmetic(text) and "analysis" in agents and not found & t.SYNTHESIS_WORDS:
        return "analysis"  # "What is 7 times 6?" is arithmetic, not a question to search for
    for agent, keywords in (("synthesis", t.SYNTHESIS_WORDS), ("analysis", t.ANALYSIS_WORDS),
                            ("research", t.RESEARCH_WORDS)):
        if found & keywords and agent in agents:
            return agent
    if len(t.numbers(text)) >= 2 and "analysis" in agents:
        return "analysis"
    return "research" if "research" in agents else agents[0]


def plan(query: str, variables: dict, schema: dict | None) -> dict:
    agents = t.schema_values(schema, "agent") or [a["name"] for a in variables.get("agents", []) if "name" in a]
    agents = agents or ["research", "analysis", "synthesis"]
    limit = int(variables.get("max_subtasks") or 5)
    limit = min(limit, ((schema or {}).get("properties", {}).get("subtasks", {}).get("maxItems") or limit))
    pieces = [clause for sentence in t.sentences(query) for clause in t.clauses(sentence)] or [query.strip() or "?"]
    if len(pieces) > limit:  # keep the plan within bounds: the overflow joins the last subtask
        pieces = pieces[: limit - 1] + ["; ".join(pieces[limit - 1:])]
    return {"subtasks": [{"id": f"s{number}", "description": piece, "agent": pick_agent(piece, agents)}
                         for number, piece in enumerate(pieces, start=1)]}


# --- agent steps ------------------------------------------------------------------------

def _valid(arguments: dict, tool: dict) -> bool:
    parameters = tool.get("parameters") or {"type": "object"}
    return not any(Draft202012Validator(parameters).iter_errors(arguments))


def _generic_arguments(text: str, tool: dict) -> dict:
    parameters = tool.get("parameters") or {}
    arguments: dict[str, Any] = {}
    for name in parameters.get("required", []):
        prop = parameters.get("properties", {}).get(name, {})
        arguments[name] = text if prop.get("type") == "string" else t.example_for(prop)
    return arguments


def tool_candidates(text: str) -> list[tuple[str, dict]]:
    """Tools that fit the subtask, best first, each with arguments built from its text."""
    found, values = set(t.words(text)), t.numbers(text)
    candidates: list[tuple[str, dict]] = []
    url = t.URL.search(text)
    if url:
        candidates.append(("http_get", {"url": url.group(0).rstrip(".,;")}))
    expression = t.arithmetic_expression(text)
    if len(values) >= 2 and found & t.STATS_WORDS:
        candidates.append(("data_analysis", {"numbers": values}))
    if expression:
        candidates.append(("calculator", {"expression": expression}))
    if len(values) >= 2:
        operator = " * " if found & {"product", "multiply"} else " + "
        candidates.append(("calculator", {"expression": operator.join(str(v) for v in values)}))
        candidates.append(("data_analysis", {"numbers": values}))
    if found & t.MEMORY_STORE_WORDS:
        candidates.append(("memory_store", {"content": text[:2000]}))
    if found & t.TIME_WORDS and not values:
        candidates.append(("current_time", {}))
    query = t.research_query(text)
    candidates += [("web_search", {"query": query}), ("memory_search", {"query": query})]
    return candidates


def choose_tool(text: str, tools: list[dict], tried: set[str]) -> tuple[str, dict] | None:
    by_name = {tool["name"]: tool for tool in tools if tool.get("name") and tool["name"] != "ask_human"}
    for name, arguments in tool_candidates(text):
        if name in by_name and name not in tried and _valid(arguments, by_name[name]):
            return name, arguments
    # No rule matched: the tool whose name and description share the most words with the subtask.
    subtask_words = set(t.words(text))
    scored = sorted(
        ((len(subtask_words & set(t.words(name + " " + tool.get("description", "")))), name)
         for name, tool in by_name.items() if name not in tried),
        key=lambda pair: (-pair[0], pair[1]),
    )
    for score, name in scored:
        arguments = _generic_arguments(text, by_name[name])
        if score > 0 and _valid(arguments, by_name[name]):
            return name, arguments
    return None


def _describe(content: Any) -> str:
    """One readable line of a tool's output."""
    if isinstance(content, dict) and "result" in content and ("ok" in content or "tool" in content):
        content = content["result"]
    if isinstance(content, dict):
        if "expression" in content and "result" in content:
            return f"{content['expression']} = {content['result']}"
        if "mean" in content and "count" in content:
            keys = ("count", "mean", "median", "stdev", "min", "max", "q1", "q3")
            return ", ".join(f"{key} {content[key]}" for key in keys if key in content)
        items = content.get("results") or content.get("hits")
        if isinstance(items, list):
            if not items:
                return "no matches found"
            snippets = [t.compact_json(item.get("snippet") or item.get("content") or item, 200)
                        for item in items[:2] if isinstance(item, dict)]
            source = f" (source: {content['source']})" if content.get("source") else ""
            return "; ".join(snippets) + source
    return t.compact_json(content, 300)


EARLIER_RESULTS = "Results of earlier subtasks:"
SUMMARY_PREFIX = "Summary of the earlier steps"


def _lines_from_notes(notes: list[str]) -> list[str]:
    """Without tool output: the earlier subtasks' results or a summary the agent was given."""
    lines: list[str] = []
    for note in notes:
        if EARLIER_RESULTS in note:
            lines += [line for line in note.split(EARLIER_RESULTS, 1)[1].splitlines() if line.strip()]
        elif note.startswith(SUMMARY_PREFIX):
            lines.append(f"- {t.first_sentences(note.split(':', 1)[-1], 3, 600)}")
    return lines


def finish_text(subtask: str, seen: Conversation) -> str:
    lines = [f"- {result['tool']}: {_describe(result['content'])}" for result in seen.tool_results if result["ok"]]
    failures = [f"- {result['tool']} failed: {_describe(result['content'])}"
                for result in seen.tool_results if not result["ok"]]
    if seen.human_answer is not None:
        lines.append(f"- answer from the person asked: {t.compact_json(seen.human_answer, 200)}")
    if not lines:
        lines = _lines_from_notes(seen.notes)
    body = "\n".join(lines + failures) or "- no tool output was needed or available"
    return f"{subtask}\n\n{body}"


def needs_tool(subtask: str) -> bool:
    """A subtask that only asks the person for an OK needs no tool first."""
    found = set(t.words(subtask)) - {"what", "when", "about"}
    topical = found & (t.RESEARCH_WORDS | t.ANALYSIS_WORDS | t.MEMORY_STORE_WORDS | t.TIME_WORDS)
    return not t.asks_confirmation(subtask) or bool(topical or t.numbers(subtask) or t.URL.search(subtask))


def agent_step(query: str, variables: dict, schema: dict | None, messages: list[dict]) -> dict:
    subtask = str(variables.get("subtask") or query)
    actions = t.schema_values(schema, "action") or ["tool", "ask_human", "finish"]
    allowed = t.schema_values(schema, "tool")
    tools = [tool for tool in variables.get("tools", []) if allowed is None or tool.get("name") in allowed]
    seen = read_conversation(messages)
    steps_left = int(variables.get("steps_left") or 99)
    finish = {"action": "finish", "result": finish_text(subtask, seen)}
    if steps_left <= 1:
        return finish
    summarised = any(note.startswith(SUMMARY_PREFIX) for note in seen.notes)
    if "tool" in actions and needs_tool(subtask) and not any(r["ok"] for r in seen.tool_results) \
            and not summarised and len(seen.tool_calls) < 3:
        choice = choose_tool(subtask, tools, set(seen.tool_calls))
        if choice:
            name, arguments = choice
            return {"action": "tool", "tool": name, "arguments": arguments,
                    "reason": f"the subtask needs {name} (matched by the offline rule set)"}
    wants_confirmation = t.asks_confirmation(subtask) or (not variables.get("subtask") and t.asks_confirmation(query))
    if wants_confirmation and "ask_human" in actions and seen.human_answer is None and not seen.asked_human:
        found = "; ".join(_describe(r["content"]) for r in seen.tool_results if r["ok"])
        question = f"Please confirm before I continue: {subtask}" + (f" (found so far: {found})" if found else "")
        return {"action": "ask_human", "question": t.compact_json(question, 500), "choices": ["yes", "no"]}
    return finish


# --- summarize and synthesize -------------------------------------------------------------

def summarize(variables: dict, messages: list[dict]) -> dict:
    transcript = str(variables.get("transcript") or " ".join(
        str(m.get("content", "")) for m in messages if m.get("role") != "system"))
    return {"summary": t.first_sentences(transcript) or "Nothing has happened yet."}


def synthesize(query: str, variables: dict) -> dict:
    results = variables.get("results") or []
    parts = [f"## {query.strip() or 'Result'}", ""]
    for number, item in enumerate(results, start=1):
        status = item.get("status") or "done"
        agent = item.get("agent") or "agent"
        parts += [f"### {number}. {item.get('subtask', '')} ({agent}, {status})", "",
                  str(item.get("result") or "_no result_").strip(), ""]
    if not results:
        parts.append("_No subtask produced a result._")
    parts.append("_Combined by the offline rule set (not a language model)._")
    return {"result": "\n".join(parts).strip()}
