"""Adjustments to daphne's HTTP server, applied once when agentos.asgi is loaded by daphne.

- Twisted parses POST bodies of ``multipart/form-data`` and form-encoded requests into
  ``request.args`` before daphne hands the raw body to Django, and answers an empty 400
  itself when a multipart body has no boundary, so Django never saw the request and could
  not answer 415 in the error shape. daphne never reads those args; Twisted's
  ``Request(parsePOSTFormSubmission=False)`` turns the parsing off (which also spares the
  reactor thread from parsing large form bodies twice). daphne builds its requests
  itself, so its request class passes that argument by default here.
- The access log never shows a query-string credential (agentos.logfilters).
"""

from __future__ import annotations

from agentos.logfilters import install_access_log_redaction


def configure_daphne() -> None:
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:  # pragma: no cover - daphne is a dependency of the web process only
        return
    original_init = WebRequest.__init__
    if not getattr(original_init, "skips_form_parsing", False):

        def __init__(self, *args, **kwargs) -> None:
            kwargs.setdefault("parsePOSTFormSubmission", False)
            original_init(self, *args, **kwargs)

        __init__.skips_form_parsing = True
        WebRequest.__init__ = __init__
    install_access_log_redaction()
