"""Shared pieces of the REST API: the one error shape and slash-optional routes.

Every error the API returns has the body ``{"error": {"code", "message", "field"}}``.
Services raise :class:`ApplicationError` subclasses; DRF's own exceptions (validation,
authentication, throttling, parse errors) are translated by :func:`exception_handler`.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import URLPattern, re_path
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from agentos.jsonguard import text_problem


class ApplicationError(Exception):
    """An error a client caused and can fix; carries its HTTP status and error code."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class NotFound(ApplicationError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class Conflict(ApplicationError):
    """The request is valid but the object's state does not allow it (e.g. pause a finished task)."""

    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class PayloadTooLarge(ApplicationError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"


class ServiceUnavailable(ApplicationError):
    """A component the request needs (PostgreSQL, Redis) is down; the client may retry."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "service_unavailable"


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def text_param(value: str, field: str) -> str:
    """``value``, text a caller sent outside a JSON body (a query parameter, a part of the
    URL) for a filter on a text column, if PostgreSQL can compare it.

    The JSON bodies' rule applies (agentos.jsonguard.text_problem): a NUL character is an
    ApplicationError (400) naming ``field``, not a DataError (a 500) when the query runs.
    """
    problem = text_problem(value)
    if problem:
        code, message = problem
        raise ApplicationError(f"{field}: {message}", field=field, code=code)
    return value


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    """Every error response: a stable code, a message, and the offending field (or null)."""

    error = ErrorDetailSerializer()


ERROR_DESCRIPTIONS = {
    400: "Invalid input; `field` names the offending field.",
    401: "Not authenticated.",
    403: "Not allowed.",
    404: "Not found, or another user's.",
    409: "The object's state does not allow this action.",
    413: "The body is larger than the limit.",
    415: "The body's media type is not accepted; send application/json.",
    429: "Too many requests.",
    503: "A component this request needs is unavailable or misconfigured.",
}


def error_responses(*codes: int, descriptions: dict[int, str] | None = None) -> dict[int, OpenApiResponse]:
    """OpenAPI responses in the one error shape, for ``extend_schema(responses={...})``."""
    texts = {**ERROR_DESCRIPTIONS, **(descriptions or {})}
    return {code: OpenApiResponse(ErrorSerializer, description=texts[code]) for code in codes}


def _first_validation_error(detail: Any, prefix: str = "") -> tuple[str | None, str, str]:
    """(field, message, code) of the first error in a DRF ValidationError detail tree."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = None if key in ("non_field_errors", "detail") else (f"{prefix}.{key}" if prefix else str(key))
            field, message, code = _first_validation_error(value, name or prefix)
            return field or name, message, code
    if isinstance(detail, list) and detail:
        for index, value in enumerate(detail):
            if value:
                nested = isinstance(value, (dict, list))
                return _first_validation_error(value, f"{prefix}[{index}]" if nested and prefix else prefix)
    code = getattr(detail, "code", "invalid") or "invalid"
    return (prefix or None), str(detail), str(code)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.field), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        field, message, code = _first_validation_error(exc.detail)
        response.data = error_body(code, message, field)
    else:
        detail = getattr(exc, "detail", str(exc))
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = error_body(str(code), str(detail))
    return response


def slash_optional(route: str, view: Any, name: str | None = None) -> URLPattern:
    """A route that answers with and without a trailing slash.

    Clients of the original API call ``/api/v1/execute`` without one, and a POST must
    never be lost to an APPEND_SLASH redirect. ``route`` is a regex body without ``^``,
    ``$`` or the trailing slash, e.g. ``r"tasks/(?P<task_id>[0-9a-f-]+)"``.
    """
    return re_path(rf"^{route}/?$", view, name=name)


class Pagination(LimitOffsetPagination):
    """limit/offset pagination with bounds: a huge limit or offset is clamped, never a 500."""

    max_limit = 200
    max_offset = 10_000_000

    def get_offset(self, request) -> int:
        return min(super().get_offset(request), self.max_offset)

