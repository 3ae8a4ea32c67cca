"""Authentication for the streaming endpoints, where DRF's authenticators do not run.

The SSE view is a plain async Django view and the websocket consumer is a Channels
consumer, so both authenticate here with the same rules as the REST API: a DRF token
(``Authorization: Token <key>`` or ``?token=<key>``, because browsers' EventSource and
WebSocket cannot set headers), a short-lived stream token for that one task in ``?token=``
(tasks/api/stream_tokens.py; preferred in URLs), or the Django session.
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest

from agentos.api import NotFound
from tasks.api.events import in_db_thread, task_for
from tasks.api.stream_tokens import looks_like_stream_token, user_for_stream_token

TOKEN_KEYWORDS = ("token", "bearer")
# The form of every API key this service issues, personal or a workspace service token's:
# DRF's Token.generate_key, 20 random bytes in lowercase hex.
API_KEY_FORM = re.compile(r"[0-9a-f]{40}")


def user_for_token(key: str | None):
    """The active user owning the DRF token ``key``, or None.

    A key of another form is nobody's, and is not looked up: the database would refuse
    some of them (PostgreSQL cannot compare text with a NUL in it).
    """
    from rest_framework.authtoken.models import Token

    if not key or not API_KEY_FORM.fullmatch(key):
        return None
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    return token.user


def token_from_header(value: str | None) -> str | None:
    if not value:
        return None
    parts = value.split()
    if len(parts) == 2 and parts[0].lower() in TOKEN_KEYWORDS:
        return parts[1]
    return None


def query_param(query_string: bytes | str, name: str) -> str | None:
    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin1")
    values = parse_qs(query_string).get(name)
    return values[0] if values else None


def user_for_credential(key: str, task_id) -> object | None:
    """The user of an API key, or of a stream token issued for ``task_id``."""
    if looks_like_stream_token(key):
        return user_for_stream_token(key, task_id)
    return user_for_token(key)


def request_credential(request: HttpRequest) -> str | None:
    """The API key or stream token of a streaming request: the Authorization header, else ``?token=``."""
    return token_from_header(request.headers.get("Authorization")) or request.GET.get("token")


async def request_user(request: HttpRequest, task_id=None):
    """The user of an async HTTP request: token header, ``?token=``, then session.

    A token that is present but wrong does not fall back to the session: a client that
    sends credentials should learn they are bad.
    """
    key = request_credential(request)
    if key:
        return await in_db_thread(user_for_credential)(key, task_id) or AnonymousUser()
    return await request.auser()


async def scope_user(scope: dict, task_id=None):
    """The user of a websocket connection: ``?token=`` first, else the session's user."""
    key = query_param(scope.get("query_string", b""), "token")
    if key:
        return await in_db_thread(user_for_credential)(key, task_id) or AnonymousUser()
    user = scope.get("user")
    if user is None:
        return AnonymousUser()
    # AuthMiddlewareStack has already resolved the session's user into the lazy object.
    return user if user.is_authenticated else AnonymousUser()


def stream_access_lost(user_id, key: str | None, task_id) -> str | None:
    """Why a stream opened by ``user_id`` (with ``key``, the API key or stream token it was
    opened with; None: the session) may no longer send the task's events, or None.

    "unauthenticated": the user was deactivated, or the API key was revoked (a stream
    token is checked once, when the stream opens: it outlives its own few minutes);
    "not_found": the user may no longer see the task (removed from its workspace).
    """
    if key and not looks_like_stream_token(key):
        user = user_for_token(key)
        user = user if user is not None and user.pk == user_id else None
    else:
        user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return "unauthenticated"
    try:
        task_for(user, task_id)
    except NotFound:
        return "not_found"
    return None


class AccessCheck:
    """Re-checks an open stream's caller (stream_access_lost) at most every
    LIVE_ACCESS_RECHECK_SECONDS, when the stream is about to send something."""

    def __init__(self, user, key: str | None, task_id) -> None:
        self.user_id, self.key, self.task_id = user.pk, key, task_id
        self.checked_at = time.monotonic()

    async def lost(self) -> str | None:
        if time.monotonic() - self.checked_at < settings.LIVE_ACCESS_RECHECK_SECONDS:
            return None
        reason = await in_db_thread(stream_access_lost)(self.user_id, self.key, self.task_id)
        self.checked_at = time.monotonic()
        return reason
