from django.apps import AppConfig


class AgentOSConfig(AppConfig):
    name = "agentos"
    verbose_name = "AgentOS"
