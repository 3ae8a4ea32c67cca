"""The API's JSON parser (kept apart from agentos.api: DRF imports it while building APIView)."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, parsers
from rest_framework.exceptions import ErrorDetail


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing text PostgreSQL cannot store.

    JSON may carry lone surrogates (``"\\ud800"``) and NUL characters; neither can be
    stored in a PostgreSQL text or jsonb column, so they are a 400 naming the field here
    rather than a 500 when the row is written.
    """

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        problem = _unstorable_text(data, "")
        if problem:
            field, code, message = problem
            raise exceptions.ValidationError({field or "non_field_errors": [ErrorDetail(message, code=code)]})
        return data


def _text_problem(text: str) -> tuple[str, str] | None:
    if "\x00" in text:
        return "null_characters_not_allowed", "Null characters are not allowed."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "invalid_unicode", "Invalid Unicode (a lone surrogate) is not allowed."
    return None


def _unstorable_text(value: Any, path: str) -> tuple[str, str, str] | None:
    """(field path, code, message) of the first text PostgreSQL cannot store, or None."""
    if isinstance(value, str):
        problem = _text_problem(value)
        return (path, *problem) if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            problem = _unstorable_text(str(key), child) or _unstorable_text(item, child)
            if problem:
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problem = _unstorable_text(item, f"{path}[{index}]")
            if problem:
                return problem
    return None
