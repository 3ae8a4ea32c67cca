"""The Origin check of websocket connections.

Cross-site websocket hijacking needs a victim's browser: a page on another site opens a
socket and the browser attaches the victim's session cookie. Browsers always send the
page's ``Origin`` with a websocket handshake, so that attack is stopped by refusing an
``Origin`` that is not one of ALLOWED_HOSTS. A handshake with no ``Origin`` at all comes
from a program (a CLI, a script, another service), which has no victim's cookie to
borrow and must authenticate with its own token; refusing it, as Channels'
AllowedHostsOriginValidator does, only locks out legitimate clients.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import ParseResult

from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    """Channels' OriginValidator that also admits a handshake without an Origin header.

    A present Origin must still match an allowed host; ``Origin: null`` (sandboxed
    frames, ``file:`` pages) is present and has no host, so it is refused.
    """

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None:
            return True
        return self.validate_origin(parsed_origin)


def allowed_hosts_origin_validator(application: Any) -> BrowserOriginValidator:
    """Wrap a websocket application: admit no Origin, or an Origin naming one of ALLOWED_HOSTS."""
    allowed_hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed_hosts:
        # Django's own default for an empty ALLOWED_HOSTS under DEBUG.
        allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
    return BrowserOriginValidator(application, allowed_hosts)
