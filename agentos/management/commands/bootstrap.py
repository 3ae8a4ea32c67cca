"""Load every app's default data (prompts, agents, tools, sample knowledge base).

Idempotent: each app's ``defaults.load_defaults`` adds what is missing and never
overwrites what a user changed. The run command calls this after ``migrate``.
"""

import importlib

from django.apps import apps
from django.core.management.base import BaseCommand

# Order matters: agents reference prompts and tools; datasets reference prompts.
APP_ORDER = ["prompts", "tools", "tasks", "memory", "evals"]


class Command(BaseCommand):
    help = "Load default prompts, agents, tools and the sample knowledge base (idempotent)."

    def handle(self, *args, **options) -> None:
        installed = {config.name for config in apps.get_app_configs()}
        for app in APP_ORDER:
            if app not in installed:
                continue
            try:
                module = importlib.import_module(f"{app}.defaults")
            except ModuleNotFoundError as error:
                if error.name != f"{app}.defaults":
                    raise
                continue
            summary = module.load_defaults()
            self.stdout.write(f"{app}: {summary}")
