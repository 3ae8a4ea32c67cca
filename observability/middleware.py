"""A server span for each HTTP request, continuing the caller's trace (``traceparent``).

Only when tracing is on (observability/tracing.py); otherwise Django drops the middleware
when it builds the handler (MiddlewareNotUsed). The span names the route, not the path
(``GET /api/v1/tasks/<uuid:task_id>/``), and never records the query string, which may
carry a stream token.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import MiddlewareNotUsed
from opentelemetry.trace import SpanKind, Status, StatusCode

from observability import tracing


class TracingMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        if not tracing.enabled():
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        with self._span(request) as span:
            response = self.get_response(request)
            _finish(span, request, response)
            return response

    async def _acall(self, request):
        with self._span(request) as span:
            response = await self.get_response(request)
            _finish(span, request, response)
            return response

    @staticmethod
    def _span(request):
        parent = tracing.context_from(request.headers.get("traceparent", ""))
        return tracing.tracer().start_as_current_span(
            f"HTTP {request.method}", context=parent, kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "url.path": request.path,
                        "url.scheme": request.scheme})


def _finish(span, request, response) -> None:
    match = getattr(request, "resolver_match", None)
    if match is not None and match.route:
        # The API's routes are patterns that accept an optional trailing slash ("tasks/?$").
        route = "/" + match.route.replace("^", "").replace("?$", "").replace("$", "")
        span.update_name(f"HTTP {request.method} {route}")
        span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", response.status_code)
    if response.status_code >= 500:
        span.set_status(Status(StatusCode.ERROR))
