"""Schema validation messages a model can act on.

jsonschema's best match for a ``oneOf`` of actions is often "is not valid under any of the
given schemas" or "'finish' was expected" when the real fault was a tool outside the enum,
``arguments`` sent as a string or an extra key. Here the branch is picked by the value of
the discriminating property (``action``), the instance is validated against that branch
alone, and each fault is named plainly: the unknown value with the allowed list, the
expected type, the unexpected key with the allowed keys, the missing key.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from agentos.llm.errors import one_line

DISCRIMINATOR = "action"
MESSAGE_LIMIT = 240
# The order faults are reported in: what the model most likely got wrong first.
_RANK = {"additionalProperties": 0, "type": 1, "enum": 2, "const": 2, "required": 3}
_TYPE_NAMES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
               float: "a number", type(None): "null"}
_EXPECTED = {"object": "a JSON object", "array": "an array", "string": "a string", "integer": "an integer",
             "number": "a number", "boolean": "true or false", "null": "null"}


def schema_problem(instance: Any, schema: dict | None) -> str | None:
    """The most relevant validation faults of ``instance`` (at most two) as one line, or None."""
    if not schema:
        return None
    if not any(Draft202012Validator(schema).iter_errors(instance)):
        return None
    prefix = ""
    branches = _action_branches(schema)
    if branches and isinstance(instance, dict):
        action = instance.get(DISCRIMINATOR)
        if action not in branches:
            allowed = ", ".join(str(name) for name in branches)
            if DISCRIMINATOR not in instance:
                return f"missing {DISCRIMINATOR!r}; use one of {allowed}"
            return f"{DISCRIMINATOR} {action!r} is not allowed here; use one of {allowed}"
        root = {key: value for key, value in schema.items() if key not in ("oneOf", "anyOf")}
        schema = {**root, **branches[action]}
        prefix = f"action {action!r}: "
    errors = sorted(Draft202012Validator(schema).iter_errors(instance),
                    key=lambda e: (_RANK.get(str(e.validator), 9), len(e.absolute_path), str(e.message)))
    if not errors:  # valid under the chosen branch: the root's oneOf needs exactly one match
        return one_line(prefix + "the reply matches more than one allowed form", MESSAGE_LIMIT)
    lines: list[str] = []
    for error in errors:
        line = describe(error)
        if line not in lines:
            lines.append(line)
        if len(lines) == 2:
            break
    return one_line(prefix + "; ".join(lines), MESSAGE_LIMIT)


def _action_branches(schema: dict) -> dict[Any, dict]:
    """``{action value: branch}`` when the root is a oneOf/anyOf discriminated by ``action``."""
    for key in ("oneOf", "anyOf"):
        branches = schema.get(key)
        if not isinstance(branches, list) or not branches:
            continue
        found: dict[Any, dict] = {}
        for branch in branches:
            prop = (branch.get("properties") or {}).get(DISCRIMINATOR) if isinstance(branch, dict) else None
            values = [prop["const"]] if isinstance(prop, dict) and "const" in prop else (
                prop.get("enum") if isinstance(prop, dict) else None)
            if not isinstance(values, list) or not values:
                return {}
            for value in values:
                found.setdefault(value, branch)
        return found
    return {}


def _where(error: ValidationError) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def describe(error: ValidationError) -> str:
    """One fault in words a model can act on."""
    where, value, expected = _where(error), error.instance, error.validator_value
    subject = where or "the reply"
    at = f"{where}: " if where else ""
    if error.validator == "additionalProperties" and isinstance(value, dict):
        allowed = list(error.schema.get("properties") or {})
        extra = [key for key in value if key not in allowed]
        keys = ", ".join(repr(key) for key in extra)
        return (f"{at}unexpected key{'s' if len(extra) > 1 else ''} {keys}; "
                f"allowed keys: {', '.join(allowed) or '(none)'}")
    if error.validator == "type":
        names = expected if isinstance(expected, list) else [expected]
        wanted = " or ".join(_EXPECTED.get(str(name), str(name)) for name in names)
        hint = " (send the object itself, not JSON text in a string)" if "object" in names and isinstance(
            value, str) else ""
        return f"{subject} must be {wanted}, got {_type_name(value)}{hint}"
    if error.validator == "enum" and isinstance(expected, list):
        allowed = ", ".join(str(item) for item in expected) or "(none)"
        if where.endswith("tool"):
            return f"tool {value!r} is not available; use one of {allowed}"
        return f"{subject}: {value!r} is not allowed; use one of {allowed}"
    if error.validator == "const":
        return f"{subject} must be {expected!r}, got {value!r}"
    if error.validator == "required" and isinstance(value, dict):
        missing = [name for name in expected if name not in value]
        return f"{at}missing {', '.join(repr(name) for name in missing)}"
    return f"{where or '(root)'}: {error.message}"
