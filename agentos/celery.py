"""The Celery application. Jobs are discovered in each app's jobs.py."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentos.settings")

app = Celery("agentos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(related_name="jobs")


def waiting_messages(queue: str | None = None) -> int:
    """Messages waiting in ``queue`` (default: the default queue), all priorities, not yet
    taken by a worker; through kombu's public channel API (a declare returns the count)."""
    with app.pool.acquire(block=True, timeout=5) as connection:  # the process's broker connections
        return connection.default_channel.queue_declare(queue=queue or app.conf.task_default_queue).message_count


@signals.task_prerun.connect
@signals.task_postrun.connect
def close_old_database_connections(sender=None, **kwargs) -> None:
    """Each job is treated like a web request: before and after it, a connection older than
    DB_CONN_MAX_AGE or one that had an error is closed (settings: CELERY_DB_REUSE_MAX).
    Not for a job run eagerly inside the caller (its connection is the caller's)."""
    from django.db import close_old_connections

    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()


_heartbeat = None


@signals.worker_ready.connect
def start_health_heartbeat(sender=None, **kwargs) -> None:
    """Tell /healthz this worker is alive: a Redis key with a TTL, rewritten by a thread
    (agentos.health.Heartbeat). Not for an eager or embedded run, which has no worker."""
    global _heartbeat
    from agentos.health import Heartbeat

    name = getattr(sender, "hostname", None) or "worker"
    _heartbeat = Heartbeat(name).start()


@signals.worker_shutdown.connect
def stop_health_heartbeat(sender=None, **kwargs) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()


@signals.setup_logging.connect
def configure_logging(**kwargs) -> None:
    """Workers log through settings.LOGGING like the web process (LOG_FORMAT, the task
    context on each line, token redaction) instead of Celery's own format."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.task_postrun.connect
def count_lease_takeovers(sender=None, retval=None, **kwargs) -> None:
    """The requeue job returns how many tasks it handed to another worker (/metrics)."""
    if getattr(sender, "name", "") == "tasks.requeue_expired_leases" and isinstance(retval, int) and retval:
        from observability.metrics import record_lease_takeovers

        record_lease_takeovers(retval)


@signals.worker_init.connect
def warm_up(sender=None, **kwargs) -> None:
    """Build what every task's first step needs once, before the worker takes jobs: the
    token counter's encoding, the model provider, the built-in tools and the URL resolver
    (the links in every task event). Otherwise a burst of tasks on a fresh worker builds
    them in every thread at once (seconds of CPU each)."""
    from agentos.llm import get_provider
    from prompts.tokens import count_tokens
    from tasks.presenters import warm_up as build_task_links
    from tools.registry import load_builtins

    count_tokens("warm up")
    get_provider()
    load_builtins()
    build_task_links()
