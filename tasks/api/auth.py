"""Authentication for the streaming endpoints, where DRF's authenticators do not run.

The SSE view is a plain async Django view and the websocket consumer is a Channels
consumer, so both authenticate here with the same rules as the REST API: a DRF token
(``Authorization: Token <key>`` or ``?token=<key>``, because browsers' EventSource and
WebSocket cannot set headers), a short-lived stream token for that one task in ``?token=``
(tasks/api/stream_tokens.py; preferred in URLs), or the Django session.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest

from tasks.api.events import in_db_thread
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


async def request_user(request: HttpRequest, task_id=None):
    """The user of an async HTTP request: token header, ``?token=``, then session.

    A token that is present but wrong does not fall back to the session: a client that
    sends credentials should learn they are bad.
    """
    key = token_from_header(request.headers.get("Authorization")) or request.GET.get("token")
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
