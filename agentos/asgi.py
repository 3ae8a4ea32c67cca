"""ASGI entry point: HTTP (Django, including the async SSE view; /mcp is the MCP endpoint,
mcp_bridge/asgi.py) and websockets (Channels)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentos.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs the app registry)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from agentos.daphne_setup import configure_daphne  # noqa: E402
from agentos.origin import allowed_hosts_origin_validator  # noqa: E402
from agentos.routing import websocket_urlpatterns  # noqa: E402
from mcp_bridge.asgi import with_mcp  # noqa: E402

configure_daphne()

application = ProtocolTypeRouter(
    {
        "http": with_mcp(django_asgi_app),
        # A present Origin must be an allowed host; none at all (a non-browser client) is admitted.
        "websocket": allowed_hosts_origin_validator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
