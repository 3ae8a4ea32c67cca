"""Log filters: secrets in query strings never reach a log line; a task's lines say whose they are.

Task context: the runner sets :data:`task_id_var`, :data:`step_index_var` and
:data:`worker_id_var` (context variables, so each thread of a worker and each asyncio task
has its own) while it runs a slice (observability/hooks.py); :class:`TaskContextFilter`
copies them onto every record as ``task_id``, ``step_index``, ``worker_id`` and a ready-made
``task_context`` suffix (`` task=<id> step=<n> worker=<id>``, empty outside a task) for the
text format; the JSON format (LOG_FORMAT=json, observability/logs.py) writes them as keys.

EventSource and WebSocket clients cannot send headers, so they authenticate with
``?token=``; every place that logs a request line would otherwise write the key in full.
Two writers exist: Python logging (Django's request errors, daphne's own messages, any
``logger.info`` with a URL) gets :class:`RedactTokensFilter` on the console handler
(settings.LOGGING), and daphne's access log, which writes to a stream without logging, is
redacted by :func:`install_access_log_redaction` (called from agentos.asgi).

Routine jobs: beat runs the lease check (``tasks.requeue_expired_leases``) every second, and
Celery logs each run three times at INFO (sent, received, succeeded); :class:`RoutineJobsFilter`
drops those lines unless the run handed tasks over, so the console shows what happens.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar

task_id_var: ContextVar[str] = ContextVar("task_id", default="")
step_index_var: ContextVar[int | None] = ContextVar("step_index", default=None)
worker_id_var: ContextVar[str] = ContextVar("worker_id", default="")

REDACTED = "[redacted]"
# Query parameters that carry a credential: token, access_token, api_key, key, secret, ...
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:[a-z0-9_.-]*token|api[_-]?key|key|secret|password|passwd|signature|sig|auth)=)[^&;#\s\"']*")


def redact(text: str) -> str:
    """``text`` with the values of credential-bearing query parameters replaced."""
    if "=" not in text:
        return text
    return _SECRET_PARAM.sub(lambda match: match.group(1) + REDACTED, text)


class RedactTokensFilter(logging.Filter):
    """Rewrites a record's message when it contains a credential in a query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the formatter's problem, not ours
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_access_log_redaction() -> None:
    """Redact daphne's access log lines (``"GET /api/v1/tasks/<id>/stream?token=..." 200``).

    daphne's CLI builds its AccessLogGenerator itself and offers no hook for the line it
    writes, so the one method that formats the request is wrapped here, once per process.
    """
    try:
        from daphne.access import AccessLogGenerator
    except ImportError:  # pragma: no cover - daphne is a dependency of the web process only
        return
    original = AccessLogGenerator.write_entry
    if getattr(original, "redacts_tokens", False):
        return

    def write_entry(self, host, date, request, *args, **kwargs):
        return original(self, host, date, redact(str(request)), *args, **kwargs)

    write_entry.redacts_tokens = True
    AccessLogGenerator.write_entry = write_entry


class TaskContextFilter(logging.Filter):
    """Puts the task id, step index and worker id of the work under way on each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        task_id, step, worker = task_id_var.get(), step_index_var.get(), worker_id_var.get()
        record.task_id, record.step_index, record.worker_id = task_id or None, step, worker or None
        if task_id:
            record.task_context = f" task={task_id}" + (f" step={step}" if step is not None else "") + (
                f" worker={worker}" if worker else "")
        else:
            record.task_context = ""
        return True


# Celery jobs that run every second or so; their routine INFO lines say nothing.
ROUTINE_JOBS = ("tasks.requeue_expired_leases",)
# Celery's success line ends with the job's return value: a count, 0 when nothing was done.
_DID_NOTHING = re.compile(r" succeeded in \S+s: 0$")


class RoutineJobsFilter(logging.Filter):
    """Drops Celery's INFO lines (sent by beat, received, succeeded with 0) about the
    ROUTINE_JOBS; a run that returned another count (tasks handed to another worker), and
    every warning or error, still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or not record.name.startswith("celery"):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the formatter's problem, not ours
            return True
        if not any(job in message for job in ROUTINE_JOBS):
            return True
        return " succeeded in " in message and not _DID_NOTHING.search(message)
