"""One JSON parser for everything a caller sends: API bodies, webhook bodies, websocket messages.

:func:`parse_json` refuses, as :class:`JSONRejected` (a client error, never a 500):

- text that is not JSON, or not UTF-8 (code ``parse_error``, as the API has always said);
- nesting deeper than ``max_depth`` (the standard parser recurses once per level, so
  ~1,000 levels end in a RecursionError; far less is never legitimate here);
- numbers that are not finite: ``NaN``, ``Infinity``, and literals such as ``1e400`` that
  overflow to infinity (PostgreSQL's jsonb refuses them when the row is written);
- text PostgreSQL cannot store: NUL characters and lone surrogates (``"\\ud800"``).

:func:`text_problem` is that last rule alone, for text that arrives outside a JSON body
(query parameters, URL parts) and reaches a filter on a text column.

``field`` names where the problem is, as a dotted path (``options.agents[2]``), when known.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32


class JSONRejected(ValueError):
    """The body is not JSON this service accepts; ``code`` is the API error code."""

    def __init__(self, message: str, *, code: str = "invalid_json", field: str | None = None,
                 detail: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.field = message, code, field
        # For a parse_error from the decoder: its own words ("Expecting value: line 1 column 2 (char 1)").
        self.detail = detail


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONRejected(f"the number {text[:40]} is out of range", code="invalid_number")
    return value


def _refuse_constant(name: str) -> float:
    raise JSONRejected(f"{name} is not a valid JSON number", code="invalid_number")


def text_problem(text: str) -> tuple[str, str] | None:
    """(code, message) when PostgreSQL cannot store or compare ``text``, else None."""
    if "\x00" in text:
        return "null_characters_not_allowed", "Null characters are not allowed."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "invalid_unicode", "Invalid Unicode (a lone surrogate) is not allowed."
    return None


def _number_name(number: float) -> str:
    return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")


def check_value(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise JSONRejected for nesting beyond ``max_depth``, unstorable text or a number that
    is not finite in a parsed value (a parser other than :func:`parse_json`, such as the MCP
    SDK's, lets ``NaN`` and ``Infinity`` through). Iterative, so a deep value cannot exhaust
    the stack here."""
    pending: list[tuple[Any, str, int]] = [(value, "", 1)]
    while pending:
        item, path, depth = pending.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise JSONRejected(problem[1], code=problem[0], field=path or None)
        elif isinstance(item, float) and not math.isfinite(item):
            raise JSONRejected(f"{_number_name(item)} is not a valid JSON number", code="invalid_number",
                               field=path or None)
        elif isinstance(item, (dict, list)):
            if depth > max_depth:
                raise JSONRejected(f"JSON nested deeper than {max_depth} levels", field=path or None)
            if isinstance(item, dict):
                children = []
                for key, child in item.items():
                    child_path = f"{path}.{key}" if path else str(key)
                    problem = text_problem(str(key))
                    if problem:
                        raise JSONRejected(problem[1], code=problem[0], field=child_path)
                    children.append((child, child_path, depth + 1))
            else:
                children = [(child, f"{path}[{index}]", depth + 1) for index, child in enumerate(item)]
            # Reversed, so the first problem in document order is the one reported.
            pending.extend(reversed(children))


def parse_json(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``data`` strictly (see the module docstring); raise JSONRejected otherwise."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise JSONRejected(f"the body is not UTF-8: {error.reason} at byte {error.start}",
                               code="parse_error") from None
    try:
        value = json.loads(data, parse_float=_finite_float, parse_constant=_refuse_constant)
    except RecursionError:
        raise JSONRejected(f"JSON nested deeper than {max_depth} levels") from None
    except JSONRejected:
        raise
    except ValueError as error:  # json.JSONDecodeError is a ValueError
        raise JSONRejected(f"the body is not valid JSON: {error}", code="parse_error", detail=str(error)) from None
    check_value(value, max_depth=max_depth)
    return value
