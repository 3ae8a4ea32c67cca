"""``/mcp``: the SDK's streamable HTTP transport inside AgentOS's ASGI application (daphne).

:func:`with_mcp` wraps the Django HTTP application: requests to ``/mcp`` go to the MCP
endpoint, everything else to Django. The endpoint checks the Host header against
ALLOWED_HOSTS (as Django would), authenticates the API token (``Authorization: Bearer
<key>`` or ``Token <key>``, tasks/api/auth.py), reads the body up to API_MAX_BODY_BYTES
(413 beyond, as the REST API: this route does not pass Django's middleware) and hands the
request to the SDK's session manager with the user in the ASGI scope, where the handlers
(mcp_bridge.server) read it.

daphne does not run ASGI lifespan events, so the session manager (which needs a running
task group) is started by the first request, in a task of its own that lives as long as the
event loop. It runs stateless: no MCP session lives in one web process, so any number of
web processes can serve ``/mcp`` behind a load balancer.
"""

from __future__ import annotations

import asyncio
import json

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from agentos.middleware import declared_length
from mcp_bridge.server import USER_SCOPE_KEY, build_server
from tasks.api.auth import token_from_header, user_for_token
from tasks.api.events import in_db_thread

MCP_PATHS = ("/mcp", "/mcp/")


async def _send_json(send, status: int, code: str, message: str, headers: list | None = None) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "field": None}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _host_allowed(scope: dict) -> bool:
    host = _header(scope, b"host") or ""
    domain, _port = split_domain_port(host)
    allowed = list(settings.ALLOWED_HOSTS) or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    return bool(domain) and validate_host(domain, allowed)


async def _bounded_body(receive, limit: int):
    """Read the request's body through ``receive``, counting its bytes: a ``receive`` that
    hands the body to the SDK in one message, or None as soon as it passes ``limit`` bytes
    (a body sent without Content-Length, or longer than it declared)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: the SDK sees it so
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            break
    pending = [message]

    async def replay() -> dict:
        return pending.pop() if pending else await receive()

    return replay


async def _too_large(send, limit: int) -> None:
    await _send_json(send, 413, "payload_too_large", f"The body is larger than {limit} bytes.")


class McpEndpoint:
    def __init__(self) -> None:
        self.manager: StreamableHTTPSessionManager | None = None
        self._runner: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> StreamableHTTPSessionManager:
        async with self._lock:
            if self.manager is None or self._runner is None or self._runner.done():
                # The Host is checked above against ALLOWED_HOSTS; the credential is a token, not a cookie.
                manager = StreamableHTTPSessionManager(
                    app=build_server(), stateless=True,
                    security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False))
                ready = asyncio.Event()

                async def keep_running() -> None:
                    async with manager.run():
                        ready.set()
                        await asyncio.Event().wait()  # until the event loop ends

                self._runner = asyncio.ensure_future(keep_running())
                await ready.wait()
                self.manager = manager
        return self.manager

    async def __call__(self, scope, receive, send) -> None:
        if not _host_allowed(scope):
            await _send_json(send, 400, "bad_host", "the Host header is not one of ALLOWED_HOSTS")
            return
        limit, length = settings.API_MAX_BODY_BYTES, declared_length(_header(scope, b"content-length"))
        if length == -1:
            await _send_json(send, 400, "invalid_content_length", "Content-Length must be a number.")
            return
        if length is not None and length > limit:
            await _too_large(send, limit)
            return
        key = token_from_header(_header(scope, b"authorization"))
        user = await in_db_thread(user_for_token)(key) if key else None
        if user is None:
            await _send_json(send, 401, "not_authenticated", "an API token is required: Authorization: Bearer <key>",
                             [(b"www-authenticate", b'Bearer realm="AgentOS"')])
            return
        receive = await _bounded_body(receive, limit)
        if receive is None:
            await _too_large(send, limit)
            return
        # The SDK ties a (stateful) session to the principal of its first request; ours is the user.
        token = AccessToken(token=f"user:{user.pk}", client_id=f"user:{user.pk}", scopes=[])
        scope = {**scope, USER_SCOPE_KEY: user, "user": AuthenticatedUser(token)}
        manager = await self._started()
        await manager.handle_request(scope, receive, send)


def with_mcp(http_application):
    """The HTTP application with ``/mcp`` served by the MCP endpoint (when MCP_SERVER_ENABLED)."""
    if not settings.MCP_SERVER_ENABLED:
        return http_application
    endpoint = McpEndpoint()

    async def application(scope, receive, send) -> None:
        if scope["type"] == "http" and scope.get("path") in MCP_PATHS:
            await endpoint(scope, receive, send)
        else:
            await http_application(scope, receive, send)

    return application
