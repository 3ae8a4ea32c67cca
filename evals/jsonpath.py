"""A small JSON path for checks: ``$``, ``.name``, ``["name"]``, ``[0]``, ``[-1]``, ``[*]`` and a
final ``.length()``. Pure; no Django import.

``$.subtasks[0].agent`` is the first subtask's agent; ``$.subtasks[*].agent`` the list of
every subtask's agent; ``$.subtasks.length()`` how many subtasks there are.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r'\.([A-Za-z_][\w-]*)|\["((?:[^"\\]|\\.)*)"\]|\[(-?\d+)\]|\[(\*)\]')
_LENGTH = ".length()"


class PathError(ValueError):
    """The path does not parse."""


class Missing(LookupError):
    """The path parses but leads nowhere in this document."""


def parse_path(path: str) -> tuple[list[tuple[str, Any]], bool]:
    """([(kind, value), ...], ends with length()); raises PathError."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise PathError("a JSON path starts with $, e.g. $.subtasks[0].agent")
    rest, length = path[1:], False
    if rest.endswith(_LENGTH):
        rest, length = rest[: -len(_LENGTH)], True
    steps, position = [], 0
    while position < len(rest):
        match = _TOKEN.match(rest, position)
        if match is None:
            raise PathError(f"cannot read the JSON path {path!r} at {rest[position:]!r}")
        name, quoted, index, star = match.groups()
        if name is not None:
            steps.append(("key", name))
        elif quoted is not None:
            steps.append(("key", quoted.replace('\\"', '"')))
        elif index is not None:
            steps.append(("index", int(index)))
        else:
            steps.append(("all", None))
        position = match.end()
    return steps, length


def _step(value: Any, kind: str, arg: Any) -> Any:
    if kind == "key":
        if isinstance(value, dict) and arg in value:
            return value[arg]
        raise Missing(f"no key {arg!r}")
    if isinstance(value, list) and -len(value) <= arg < len(value):
        return value[arg]
    raise Missing(f"no element [{arg}]")


def resolve(document: Any, path: str) -> Any:
    """The value at ``path``; raises PathError or Missing."""
    steps, length = parse_path(path)
    values, spread = [document], False
    for kind, arg in steps:
        if kind == "all":
            if not all(isinstance(value, list) for value in values):
                raise Missing("[*] applied to something that is not a list")
            values, spread = [item for value in values for item in value], True
            continue
        if spread:
            values = [_step(value, kind, arg) for value in values if isinstance(value, (dict, list))]
        else:
            values = [_step(values[0], kind, arg)]
    result = values if spread else values[0]
    if length:
        if not isinstance(result, (list, dict, str)):
            raise Missing("length() of something that has no length")
        return len(result)
    return result
