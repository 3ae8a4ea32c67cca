from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"
    verbose_name = "Observability"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from observability import signals, tracing  # noqa: F401 (signal receivers)

        tracing.configure_from_environment()
