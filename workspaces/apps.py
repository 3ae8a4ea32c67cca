from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    name = "workspaces"
    verbose_name = "Workspaces, roles and audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from workspaces import signals  # noqa: F401 (connects the receivers)
