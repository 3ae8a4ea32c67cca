"""Short-lived stream tokens: what a browser puts in ``?token=`` instead of the API key.

EventSource and WebSocket cannot send headers, so their credential travels in the URL,
where proxies, browser history and access logs may keep it. A stream token is signed by
the server (django.core.signing.TimestampSigner, keyed by SECRET_KEY), names one task and
one user, and expires after STREAM_TOKEN_SECONDS; nothing is stored. It opens only that
task's event stream and websocket, and is refused everywhere else.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing

SALT = "agentos.tasks.stream-token"


def stream_token_create(*, user, task) -> str:
    return signing.TimestampSigner(salt=SALT).sign_object({"t": str(task.pk), "u": user.pk})


def looks_like_stream_token(value: str) -> bool:
    """API keys are 40 hex characters; signed values carry the signer's ``:`` separators."""
    return ":" in value


def user_for_stream_token(token: str, task_id) -> object | None:
    """The active user the token was issued to, if it is unexpired, untampered and for ``task_id``."""
    from django.contrib.auth import get_user_model

    if len(token) > 500:
        return None
    try:
        data = signing.TimestampSigner(salt=SALT).unsign_object(token, max_age=settings.STREAM_TOKEN_SECONDS)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(data, dict) or str(data.get("t")) != str(task_id):
        return None
    user = get_user_model().objects.filter(pk=data.get("u"), is_active=True).first()
    return user
