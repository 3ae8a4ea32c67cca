"""JSON log lines (LOG_FORMAT=json): one object per line, for log pipelines.

Keys: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, the task context
(``task_id``, ``step_index``, ``worker_id``; null outside a task, see
agentos.logfilters.TaskContextFilter), ``exception`` (the formatted traceback, if any) and
any ``extra={...}`` fields a caller passed (e.g. ``error_code`` on a model failure).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "task_id", "step_index", "worker_id", "task_context"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "task_id": getattr(record, "task_id", None),
            "step_index": getattr(record, "step_index", None),
            "worker_id": getattr(record, "worker_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
