"""The HTTP edge: body limits, JSON 404s under /api/, and answers during an outage.

:class:`EdgeMiddleware` runs first, before anything reads the body:

- a declared ``Content-Length`` over the limit of the path (API_MAX_BODY_BYTES under
  ``/api/``, WEBHOOK_MAX_BYTES under ``/hooks/``, DATA_UPLOAD_MAX_MEMORY_SIZE elsewhere)
  is a 413 at once, in the JSON error shape for machine paths. Without this, a body over
  DATA_UPLOAD_MAX_MEMORY_SIZE reached Django's RequestDataTooBig and its HTML 400 page;
- an unknown path under ``/api/`` answers the JSON error shape, not Django's HTML 404;
- a query parameter with text PostgreSQL cannot compare (a NUL) is a 400 on the views of
  Django's admin, whose change lists pass them to the database as filters (the project's
  own views check the parameters they use, with agentos.api.text_param).

:func:`server_error` (the project's handler500) turns an outage of PostgreSQL or Redis
into a 503 with ``Retry-After``, JSON for machine paths and a short page otherwise, and
:class:`OutageLogFilter` shortens the log record of such a request to one warning line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader

from agentos.api import error_body
from agentos.jsonguard import text_problem

MACHINE_PREFIXES = ("/api/", "/hooks/", "/healthz")
RETRY_AFTER_SECONDS = 5


def is_machine_path(path: str) -> bool:
    """Paths whose clients are programs: every answer there is JSON."""
    return path.startswith(MACHINE_PREFIXES)


def body_limit(path: str) -> int:
    if path.startswith("/api/"):
        return settings.API_MAX_BODY_BYTES
    if path.startswith("/hooks/"):
        return settings.WEBHOOK_MAX_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE or sys.maxsize


def declared_length(value: str | None) -> int | None:
    """A Content-Length header's value as a number: None when absent or empty, -1 when it is
    not a number of bytes (also for the /mcp route, which does not pass this middleware)."""
    if not value:
        return None
    try:
        length = int(value)
    except ValueError:
        return -1
    return length if length >= 0 else -1


def error_response(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    if is_machine_path(request.path):
        return JsonResponse(error_body(code, message), status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class EdgeMiddleware:
    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        length = declared_length(request.META.get("CONTENT_LENGTH"))
        if length == -1:
            return error_response(request, 400, "invalid_content_length", "Content-Length must be a number.")
        limit = body_limit(request.path)
        if length is not None and length > limit:
            return error_response(request, 413, "payload_too_large", f"The body is larger than {limit} bytes.")
        response = self.get_response(request)
        if response.status_code == 404 and request.path.startswith("/api/") and not _is_json(response):
            return JsonResponse(error_body("not_found", "Not found."), status=404)
        return response

    def process_view(self, request: HttpRequest, view_func: Callable, view_args, view_kwargs) -> HttpResponse | None:
        # ModelAdmin.get_urls marks each of its views with the model admin (on any admin site).
        if getattr(view_func, "model_admin", None) is None:
            return None
        for name, values in request.GET.lists():
            for text in (name, *values):
                problem = text_problem(text)
                if problem:
                    return error_response(request, 400, problem[0], f"{name}: {problem[1]}")
        return None


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


# --- outages ------------------------------------------------------------------------

def outage_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean PostgreSQL or Redis is unreachable, not that the request is wrong."""
    import kombu.exceptions
    import redis.exceptions
    from django.db import InterfaceError, OperationalError

    errors: list[type[BaseException]] = [OperationalError, InterfaceError, redis.exceptions.ConnectionError,
                                         redis.exceptions.TimeoutError, kombu.exceptions.OperationalError]
    try:
        from psycopg_pool import PoolTimeout

        errors.append(PoolTimeout)
    except ImportError:  # pragma: no cover - the pool is optional
        pass
    return tuple(errors)


def is_outage(error: BaseException | None) -> bool:
    return error is not None and isinstance(error, outage_errors())


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After: JSON for machine paths, a short page for people."""
    message = "A component this service needs is temporarily unavailable; try again shortly."
    if is_machine_path(request.path):
        response = JsonResponse(error_body("service_unavailable", message), status=503)
    else:
        # A plain template: the outage may be the database, so no context processor that queries.
        response = HttpResponse(loader.get_template("unavailable.html").render({"retry_after": RETRY_AFTER_SECONDS}),
                                status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: called inside Django's exception handling, so sys.exc_info() is the error."""
    if is_outage(sys.exc_info()[1]):
        return unavailable_response(request)
    if is_machine_path(request.path):
        return JsonResponse(error_body("server_error", "Internal server error."), status=500)
    from django.views.defaults import server_error as default_server_error

    return default_server_error(request)


class OutageLogFilter(logging.Filter):
    """One warning line, without a traceback, for a request that failed because of an outage.

    Django logs every 5xx on ``django.request`` with the exception's traceback; during an
    outage that is a traceback per request. The record is rewritten, not dropped, so the
    outage still shows in the log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if is_outage(error):
            path = getattr(getattr(record, "request", None), "path", "?")
            record.msg, record.args = "Service unavailable (%s): %s: %s", (
                path, type(error).__name__, str(error).strip().splitlines()[0][:200] if str(error).strip() else "")
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        elif getattr(record, "status_code", None) == 503 and record.levelno > logging.WARNING:
            # A 503 a view chose to answer (e.g. the event stream when Redis is down): expected, not an error.
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
