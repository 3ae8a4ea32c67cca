"""Secrets in query strings never reach a log line.

EventSource and WebSocket clients cannot send headers, so they authenticate with
``?token=``; every place that logs a request line would otherwise write the key in full.
Two writers exist: Python logging (Django's request errors, daphne's own messages, any
``logger.info`` with a URL) gets :class:`RedactTokensFilter` on the console handler
(settings.LOGGING), and daphne's access log, which writes to a stream without logging, is
redacted by :func:`install_access_log_redaction` (called from agentos.asgi).
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
# Query parameters that carry a credential: token, access_token, api_key, key, secret, ...
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:[a-z0-9_.-]*token|api[_-]?key|key|secret|password|passwd|signature|sig|auth)=)[^&;#\s\"']*")


def redact(text: str) -> str:
    """``text`` with the values of credential-bearing query parameters replaced."""
    if "=" not in text:
        return text
    return _SECRET_PARAM.sub(lambda match: match.group(1) + REDACTED, text)


class RedactTokensFilter(logging.Filter):
    """Rewrites a record's message when it contains a credential in a query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the formatter's problem, not ours
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_access_log_redaction() -> None:
    """Redact daphne's access log lines (``"GET /api/v1/tasks/<id>/stream?token=..." 200``).

    daphne's CLI builds its AccessLogGenerator itself and offers no hook for the line it
    writes, so the one method that formats the request is wrapped here, once per process.
    """
    try:
        from daphne.access import AccessLogGenerator
    except ImportError:  # pragma: no cover - daphne is a dependency of the web process only
        return
    original = AccessLogGenerator.write_entry
    if getattr(original, "redacts_tokens", False):
        return

    def write_entry(self, host, date, request, *args, **kwargs):
        return original(self, host, date, redact(str(request)), *args, **kwargs)

    write_entry.redacts_tokens = True
    AccessLogGenerator.write_entry = write_entry
