"""Size limits of a JSON Schema checked before anything looks at the items.

A full JSON Schema validation visits every item before it reports that a list is too long
(a 1,000,000-number list took 11 s of CPU to be refused by a 100,000-item limit). This walk
compares only lengths against ``maxItems``, ``maxLength`` and ``maxProperties``, and goes
into a list's items only when their schema has limits of its own.
"""

from __future__ import annotations

from typing import Any

_SIZE_KEYWORDS = ("maxItems", "maxLength", "maxProperties")
_JSON_TYPES = {dict: "object", list: "array", str: "string"}


def _has_limits(schema: Any) -> bool:
    if isinstance(schema, dict):
        return any(key in schema for key in _SIZE_KEYWORDS) or any(_has_limits(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_has_limits(item) for item in schema)
    return False


def _resolve(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return root.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
    return schema


def _branches(schema: dict, value: Any, root: dict) -> list[dict]:
    """The schema and, for anyOf / oneOf, the branches meant for this value's JSON type."""
    schema = _resolve(schema, root)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if not alternatives:
        return [schema]
    kind = _JSON_TYPES.get(type(value))
    return [_resolve(branch, root) for branch in alternatives
            if isinstance(branch, dict) and _resolve(branch, root).get("type") == kind]


def _check(schema: dict, value: Any, path: str, root: dict) -> tuple[str, str | None] | None:
    for branch in _branches(schema, value, root):
        where = path or None
        if isinstance(value, list) and isinstance(branch.get("maxItems"), int) and len(value) > branch["maxItems"]:
            return f"{len(value)} items is more than the {branch['maxItems']} allowed", where
        if isinstance(value, str) and isinstance(branch.get("maxLength"), int) and len(value) > branch["maxLength"]:
            return f"{len(value)} characters is more than the {branch['maxLength']} allowed", where
        if isinstance(value, dict):
            limit = branch.get("maxProperties")
            if isinstance(limit, int) and len(value) > limit:
                return f"{len(value)} properties is more than the {limit} allowed", where
            for key, child_schema in (branch.get("properties") or {}).items():
                if key in value and isinstance(child_schema, dict):
                    problem = _check(child_schema, value[key], f"{path}.{key}" if path else key, root)
                    if problem:
                        return problem
        if isinstance(value, list) and isinstance(branch.get("items"), dict) and _has_limits(branch["items"]):
            for index, item in enumerate(value):
                problem = _check(branch["items"], item, f"{path}.{index}" if path else str(index), root)
                if problem:
                    return problem
    return None


def size_problem(schema: dict, value: Any) -> tuple[str, str | None] | None:
    """(message, dotted path) of the first value over a size limit of ``schema``, or None."""
    return _check(schema, value, "", schema)
