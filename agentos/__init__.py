"""AgentOS: durable LLM agents run the 12-factor way."""

from agentos.celery import app as celery_app

__all__ = ["celery_app"]
