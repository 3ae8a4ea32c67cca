"""The API's JSON parser (kept apart from agentos.api: DRF imports it while building APIView)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import parsers

from agentos.jsonguard import JSONRejected, parse_json


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, replaced by the strict one in agentos.jsonguard.

    Too deep nesting, numbers that are not finite (``1e400``, ``NaN``) and text PostgreSQL
    cannot store (NUL, lone surrogates) are a 400 naming the field, never a 500 when the
    row is written. A body over API_MAX_BODY_BYTES is a 413 (agentos.middleware refuses
    a declared length earlier; this catches a body sent without one).
    """

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        from agentos.api import ApplicationError, PayloadTooLarge

        limit = settings.API_MAX_BODY_BYTES
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
        try:
            return parse_json(data)
        except JSONRejected as error:
            raise ApplicationError(error.message, code=error.code, field=error.field) from None
