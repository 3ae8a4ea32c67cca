"""manage.py api_token USERNAME: print the user's API token, creating it if needed."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Print USERNAME's API token (for 'Authorization: Token <key>'), creating it on first use."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--rotate", action="store_true", help="Replace the existing token with a new one.")

    def handle(self, *args, username: str, rotate: bool, **options) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r} (create one with: manage.py createsuperuser)")
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive")
        from tasks.api.keys import api_key_rotate
        from workspaces.services import api_key_rotated

        if rotate:
            self.stdout.write(api_key_rotate(user=user))  # audited as token.rotate
            return
        with transaction.atomic():
            token, created = Token.objects.get_or_create(user=user)
            if created:
                api_key_rotated(user=user, created=True)
        self.stdout.write(token.key)
