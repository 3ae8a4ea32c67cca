"""Narrowing a prompt's response schema for one call (factor 1: the model picks from enums).

The plan's ``agent`` becomes an enum of the enabled agents; an agent step's ``tool`` an
enum of its allowed tools, and its ``action`` alternatives are cut to what is allowed now
(no ``tool`` without tools, no ``ask_human`` without a person, only ``finish`` on the last
step). Works on the default schemas' shapes (properties, items, oneOf/anyOf branches).
"""

from __future__ import annotations

from typing import Any


def _branch_action(branch: Any) -> str | None:
    action = branch.get("properties", {}).get("action", {}) if isinstance(branch, dict) else {}
    if "const" in action:
        return action["const"]
    values = action.get("enum")
    return values[0] if isinstance(values, list) and len(values) == 1 else None


def _walk(node: Any, enums: dict[str, list], actions: set[str] | None) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, enums, actions)
        return
    if not isinstance(node, dict):
        return
    for key in ("oneOf", "anyOf"):
        if actions is not None and isinstance(node.get(key), list):
            kept = [b for b in node[key] if _branch_action(b) is None or _branch_action(b) in actions]
            node[key] = kept
    properties = node.get("properties")
    if isinstance(properties, dict):
        for name, values in enums.items():
            prop = properties.get(name)
            if isinstance(prop, dict) and prop.get("type") == "string" and "const" not in prop:
                prop["enum"] = list(values)
        action = properties.get("action")
        if actions is not None and isinstance(action, dict) and isinstance(action.get("enum"), list):
            action["enum"] = [value for value in action["enum"] if value in actions]
    for value in node.values():
        _walk(value, enums, actions)


def _copy(node: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars): copy.deepcopy's memo and dispatch
    cost several times more, and a schema holds nothing else."""
    if isinstance(node, dict):
        return {key: _copy(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_copy(item) for item in node]
    return node


def narrow_schema(schema: dict | None, *, enums: dict[str, list] | None = None, actions: list[str] | None = None,
                  max_items: dict[str, int] | None = None) -> dict | None:
    """A copy of ``schema`` with string properties named in ``enums`` restricted to those values,
    action alternatives limited to ``actions``, and array properties capped by ``max_items``."""
    if not schema:
        return schema
    narrowed = _copy(schema)
    _walk(narrowed, enums or {}, set(actions) if actions is not None else None)
    for name, limit in (max_items or {}).items():
        prop = narrowed.get("properties", {}).get(name)
        if isinstance(prop, dict) and prop.get("type") == "array":
            prop["maxItems"] = min(limit, prop.get("maxItems", limit))
    return narrowed
