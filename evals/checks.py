"""The checks of a dataset item: validation when saved, verdicts when an output is evaluated.

A check is a JSON object with a ``type``:

- ``contains`` / ``not_contains`` (``value``; optional ``path``, ``ignore_case``): the text, or
  the value at ``path``, contains / does not contain ``value``;
- ``regex`` (``pattern``; optional ``path``, ``ignore_case``): the pattern is found (risky
  patterns are refused when saved: evals.regexguard);
- ``json_path_equals`` (``path``, ``value``): the value at ``path`` equals ``value``;
- ``json_schema`` (``schema``): the output validates against the JSON Schema;
- ``numeric`` (``path``, ``value``; optional ``tolerance``): the number at ``path`` is within
  ``tolerance`` of ``value``;
- ``rubric`` (``rubric``): the configured model judges that the output meets the rubric
  (evals.grading).

The text of an output is the model's JSON re-serialised (``ensure_ascii=False``) when it
answered with JSON, else its text. A verdict is ``{"type", "verdict", "message"}`` with
verdict ``pass``, ``fail``, ``skipped`` (a rubric on the offline provider) or ``error``
(the check could not be applied, e.g. a path that leads nowhere, or it timed out), which
counts as a fail.

``regex`` and ``json_schema`` checks run in a check process with a timeout (evals.bounded):
what they cost depends on the pattern or schema a user wrote, and may be exponential.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from evals.bounded import run_in_check_process
from evals.jsonpath import Missing, PathError, parse_path, resolve
from evals.regexguard import regex_problem, safe_search

FIELDS = {
    "contains": ({"value"}, {"path", "ignore_case"}),
    "not_contains": ({"value"}, {"path", "ignore_case"}),
    "regex": ({"pattern"}, {"path", "ignore_case"}),
    "json_path_equals": ({"path", "value"}, set()),
    "json_schema": ({"schema"}, set()),
    "numeric": ({"path", "value"}, {"tolerance"}),
    "rubric": ({"rubric"}, set()),
}
MAX_CHECKS = 20
# Their cost depends on the user's pattern or schema: they run in a check process (evals.bounded).
BOUNDED = {"regex", "json_schema"}
# Keywords whose values are data, not schemas; and those whose values map names to schemas.
_DATA_KEYWORDS = {"const", "enum", "default", "examples"}
_SCHEMA_MAPS = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}


@dataclass(frozen=True)
class Output:
    """What a check looks at: the parsed JSON (or None) and the text."""

    data: Any
    text: str
    query: str = ""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _schema_patterns(schema: Any) -> list[str]:
    """The regular expressions of a JSON Schema: ``pattern`` values and ``patternProperties`` keys."""
    found, pending = [], [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                found.append(value)
            elif key in _SCHEMA_MAPS and isinstance(value, dict):
                if key == "patternProperties":
                    found.extend(value)
                pending.extend(value.values())
            elif key not in _DATA_KEYWORDS:
                pending.append(value)
    return list(dict.fromkeys(found))


def _schema_problems(schema: Any) -> list[str]:
    if not isinstance(schema, dict):
        return ["schema must be a JSON object"]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        return [f"invalid JSON Schema: {error.message}"]
    for pattern in _schema_patterns(schema):
        problem = regex_problem(pattern)
        if problem:
            return [f"schema pattern {pattern[:60]!r}: {problem}"]
    return []


def _field_problems(kind: str, check: dict) -> list[str]:
    problems = []
    if "path" in check:
        try:
            parse_path(check["path"])
        except PathError as error:
            problems.append(str(error))
    if kind in ("contains", "not_contains") and not (isinstance(check["value"], str) and check["value"]):
        problems.append("value must be a non-empty string")
    if kind == "regex":
        problem = regex_problem(check["pattern"])
        if problem:
            problems.append(problem)
    if kind == "json_schema":
        problems.extend(_schema_problems(check["schema"]))
    if kind == "numeric":
        if not _is_number(check["value"]):
            problems.append("value must be a number")
        tolerance = check.get("tolerance", 0)
        if not _is_number(tolerance) or tolerance < 0:
            problems.append("tolerance must be a number >= 0")
    if kind == "rubric" and not (isinstance(check["rubric"], str) and check["rubric"].strip()):
        problems.append("rubric must be a non-empty text")
    if "ignore_case" in check and not isinstance(check["ignore_case"], bool):
        problems.append("ignore_case must be true or false")
    return problems


def check_problems(check: Any) -> list[str]:
    """Every reason to refuse one check; empty when it is fine."""
    if not isinstance(check, dict):
        return ["a check must be a JSON object"]
    kind = check.get("type")
    if not isinstance(kind, str):
        what = "a check needs a type" if kind is None else "type must be a string"
        return [f"{what}: one of {', '.join(FIELDS)}"]
    if kind not in FIELDS:
        return [f"unknown check type {kind!r}; choose from {', '.join(FIELDS)}"]
    required, optional = FIELDS[kind]
    missing = sorted(required - set(check))
    unknown = sorted(set(check) - required - optional - {"type"})
    problems = [f"{kind}: missing {', '.join(missing)}"] if missing else []
    if unknown:
        problems.append(f"{kind}: unknown field(s) {', '.join(unknown)}")
    return problems or [f"{kind}: {problem}" for problem in _field_problems(kind, check)]


def checks_problems(checks: Any) -> list[str]:
    if not isinstance(checks, list):
        return ["checks must be a list"]
    if len(checks) > MAX_CHECKS:
        return [f"at most {MAX_CHECKS} checks per item"]
    return [f"check {number}: {problem}" for number, check in enumerate(checks, 1) for problem in check_problems(check)]


def _target_text(check: dict, output: Output) -> str:
    if "path" not in check:
        return output.text
    value = resolve(output.data, check["path"])
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _contains(check: dict, output: Output) -> tuple[bool, str]:
    text, value = _target_text(check, output), check["value"]
    if check.get("ignore_case"):
        text, value = text.lower(), value.lower()
    found = value in text
    message = f"{check['value']!r} {'found' if found else 'not found'}"
    return (found if check["type"] == "contains" else not found), message


def _regex(check: dict, output: Output) -> tuple[bool, str]:
    found = safe_search(check["pattern"], _target_text(check, output), ignore_case=bool(check.get("ignore_case")))
    return found, f"/{check['pattern']}/ {'matched' if found else 'did not match'}"


def _equals(check: dict, output: Output) -> tuple[bool, str]:
    actual, expected = resolve(output.data, check["path"]), check["value"]
    same = actual == expected and isinstance(actual, bool) == isinstance(expected, bool)
    return same, f"{check['path']} is {json.dumps(actual, ensure_ascii=False)[:200]}"


def _schema(check: dict, output: Output) -> tuple[bool, str]:
    error = best_match(Draft202012Validator(check["schema"]).iter_errors(output.data))
    if error is None:
        return True, "valid"
    where = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return False, f"{where}: {error.message}"[:300]


def _numeric(check: dict, output: Output) -> tuple[bool, str]:
    actual = resolve(output.data, check["path"])
    if isinstance(actual, str):
        try:
            actual = float(actual)
        except ValueError:
            return False, f"{check['path']} is not a number"
    if not _is_number(actual):
        return False, f"{check['path']} is not a number"
    tolerance = check.get("tolerance", 0)
    message = f"{check['path']} is {actual} (want {check['value']} ± {tolerance})"
    return abs(actual - check["value"]) <= tolerance, message


APPLY: dict[str, Callable[[dict, Output], tuple[bool, str]]] = {
    "contains": _contains, "not_contains": _contains, "regex": _regex, "json_path_equals": _equals,
    "json_schema": _schema, "numeric": _numeric,
}


def verdict(check: dict, output: Output, *, grade: Callable[[dict, Output], dict] | None = None) -> dict:
    """The verdict of one (validated) check on ``output``; ``grade`` handles rubrics.
    ``regex`` and ``json_schema`` checks run in a check process, stopped at a timeout."""
    kind = check["type"]
    if kind == "rubric":
        if grade is None:
            return {"type": kind, "verdict": "skipped", "message": "no grader configured"}
        return {"type": kind, **grade(check, output)}
    if kind in BOUNDED:
        return run_in_check_process({"check": check, "data": output.data, "text": output.text,
                                     "query": output.query})
    return _applied(check, output)


def bounded_verdict(arguments: dict, _context: None = None) -> dict:
    """What a check process runs (evals.bounded): the verdict of ``arguments["check"]`` on the
    output in ``arguments``."""
    output = Output(data=arguments["data"], text=arguments["text"], query=arguments.get("query") or "")
    return _applied(arguments["check"], output)


def _applied(check: dict, output: Output) -> dict:
    kind = check["type"]
    try:
        ok, message = APPLY[kind](check, output)
    except (Missing, PathError, ValueError, TypeError) as error:
        return {"type": kind, "verdict": "error", "message": str(error)[:300]}
    return {"type": kind, "verdict": "pass" if ok else "fail", "message": message}


def passed(verdicts: list[dict]) -> bool:
    """An item passes when no check failed or errored (skipped rubrics do not count)."""
    return all(item["verdict"] in ("pass", "skipped") for item in verdicts)
