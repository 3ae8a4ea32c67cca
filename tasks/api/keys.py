"""A user's API key (a DRF token): read it, or replace it with a new one."""

from __future__ import annotations

from django.db import transaction
from rest_framework.authtoken.models import Token


def api_key_get(*, user) -> str | None:
    token = Token.objects.filter(user=user).first()
    return token.key if token else None


@transaction.atomic
def api_key_rotate(*, user) -> str:
    """A new key for ``user``; the old one stops working at once (its row is deleted).

    Stream tokens already issued stay valid until they expire (minutes): they are signed,
    not stored, and name the user, not the key.
    """
    from workspaces.services import api_key_rotated

    Token.objects.filter(user=user).delete()
    key = Token.objects.create(user=user).key
    api_key_rotated(user=user)
    return key
