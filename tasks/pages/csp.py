"""Content-Security-Policy header for every HTML response.

The product pages run no inline script at all (their JavaScript lives in static files and
their data travels in ``json_script`` blocks, which are never executed), so model output
that somehow reached the markup still could not run. Two areas we do not write ourselves
need a looser policy:

- ``/admin/`` and ``/prompt-editor/`` (the same prompt pages for prompt editors): the prompt
  admin's preview and diff pages carry inline ``style`` attributes and a ``<style>`` block;
  scripts stay ``'self'`` only.
- ``/api/docs/``: drf-spectacular's Swagger page boots with an inline ``<script>`` and
  ``<style>``; it shows only the API schema, never model output.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

BASE = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self' ws: wss:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
LOOSER = {
    "/admin/": {"style-src": "'self' 'unsafe-inline'"},
    "/prompt-editor/": {"style-src": "'self' 'unsafe-inline'"},
    "/api/docs/": {"script-src": "'self' 'unsafe-inline'", "style-src": "'self' 'unsafe-inline'"},
}


def _serialise(directives: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}" for name, value in directives.items())


STRICT_POLICY = _serialise(BASE)
PREFIX_POLICIES = [(prefix, _serialise({**BASE, **extra})) for prefix, extra in LOOSER.items()]


def policy_for(path: str) -> str:
    for prefix, policy in PREFIX_POLICIES:
        if path.startswith(prefix):
            return policy
    return STRICT_POLICY


class ContentSecurityPolicyMiddleware:
    """Adds the policy unless a view set its own header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy_for(request.path)
        return response
