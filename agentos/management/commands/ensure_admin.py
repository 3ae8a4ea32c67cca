"""Create a first staff account when the database has no users, and say how to sign in.

The password is random and kept in var/admin_password (mode 0600), so a fresh install can
sign in at once without a default password anyone could guess.
"""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from agentos.embedded import var_dir


class Command(BaseCommand):
    help = "Create the first admin user if there is none (password saved under var/)."

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        if User.objects.exists():
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "admin@localhost", password)
        path = var_dir() / "admin_password"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(password + "\n")
        path.chmod(0o600)
        self.stdout.write(f"Created user 'admin' with password {password} (also in {path}).")
