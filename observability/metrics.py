"""Prometheus metrics that stay right with any number of web and worker processes.

Two sources, both shared by every process, read when /metrics is scraped:

- Counters and histograms live in Redis (the broker's database), in a few hashes under
  ``agentos:metrics:``. The step store counts a step once it has committed
  (:func:`record_step`) into this process's :class:`Pending` sums, which a thread adds to
  Redis every second in one pipelined round trip: committed steps are counted once
  whichever worker, on whichever machine, wrote them, the figures survive a worker's
  restart, and the step path never waits for Redis. (prometheus_client's multiprocess mode
  would need one directory shared by every process, i.e. one machine, and its cleanup when
  processes die.)
- Gauges are derived at scrape time: tasks by status from PostgreSQL, queue depth from the
  broker's lists, connected live clients from the set their consumers keep
  (observability/live_clients.py).

Any web process can answer a scrape; all answer the same.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time

from django.conf import settings
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

logger = logging.getLogger(__name__)
PREFIX = "agentos:metrics:"
STEPS, TOKENS, COST, TOOL_ERRORS, LATENCY, TAKEOVERS = (
    PREFIX + name for name in ("steps", "tokens", "cost", "tool_errors", "model_latency", "lease_takeovers"))
LIVE_CLIENTS = PREFIX + "live_clients"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
FLUSH_SECONDS = 1.0
SEP = "\x1f"  # between label values in a hash field (no label value contains it)
MODEL_KINDS = frozenset({"plan", "llm", "summary", "synthesis"})

_client = None
_client_lock = threading.Lock()
_last_warning = 0.0


def redis_client():
    """One client per process (redis-py's connection pool is thread-safe)."""
    global _client
    if _client is None:
        import redis

        with _client_lock:
            if _client is None:
                _client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2.0,
                                               socket_connect_timeout=2.0)
    return _client


def _warn(message: str) -> None:
    """At most one warning a minute: an unreachable Redis must not flood the log."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > 60:
        _last_warning = now
        logger.warning(message, exc_info=True)


def _field(*values) -> str:
    return SEP.join(str(value) for value in values)


class Pending:
    """Counts added in this process and not yet written to Redis.

    The step path only adds to a dict (microseconds); a daemon thread writes the sums every
    FLUSH_SECONDS in one pipelined round trip, and at exit. A scrape flushes its own
    process first. Per process (a forked child starts empty with its own thread). A process
    killed outright loses at most its last FLUSH_SECONDS of counts, which Prometheus sees
    as a slightly smaller increase, never as a reset.
    """

    def __init__(self) -> None:
        self._pid = 0
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self._sums: dict[tuple[str, str], float] = {}

    def _ensure_thread(self) -> None:
        pid = os.getpid()
        if self._pid != pid:
            self._pid, self._lock, self._counts, self._sums = pid, threading.Lock(), {}, {}
            threading.Thread(target=self._run, name="metrics-flush", daemon=True).start()
            atexit.register(self.flush)

    def add(self, counts: list[tuple[str, str, int]], sums: list[tuple[str, str, float]]) -> None:
        self._ensure_thread()
        with self._lock:
            for key, field, amount in counts:
                self._counts[key, field] = self._counts.get((key, field), 0) + amount
            for key, field, amount in sums:
                self._sums[key, field] = self._sums.get((key, field), 0.0) + amount

    def flush(self) -> None:
        with self._lock:
            counts, sums, self._counts, self._sums = self._counts, self._sums, {}, {}
        if not counts and not sums:
            return
        try:
            pipe = redis_client().pipeline(transaction=False)
            for (key, field), amount in counts.items():
                pipe.hincrby(key, field, amount)
            for (key, field), amount in sums.items():
                pipe.hincrbyfloat(key, field, amount)
            pipe.execute()
        except Exception:  # noqa: BLE001 - Redis down: these counts are lost, the tasks go on
            _warn("metrics: could not write counts to Redis")

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()


pending = Pending()


def flush() -> None:
    pending.flush()


def record_step(step) -> None:
    """Count one committed step (in this process; written to Redis within FLUSH_SECONDS).
    Never raises: metrics must not fail a task."""
    try:
        counts, sums = [(STEPS, _field(step.kind, step.status), 1)], []
        if step.kind in MODEL_KINDS and step.model:
            version = step.prompt_label or "none"
            counts += [(TOKENS, _field(step.model, version, "input"), step.tokens_in),
                       (TOKENS, _field(step.model, version, "output"), step.tokens_out),
                       (LATENCY, _field(step.model, "count"), 1)]
            if step.cost_usd:
                sums.append((COST, _field(step.model, version), float(step.cost_usd)))
            seconds = step.duration_ms / 1000
            counts += [(LATENCY, _field(step.model, bound), 1) for bound in LATENCY_BUCKETS if seconds <= bound]
            sums.append((LATENCY, _field(step.model, "sum"), seconds))
        if step.kind == "tool" and step.status != "ok":
            output = step.output if isinstance(step.output, dict) else {}
            tool = (step.input or {}).get("tool", "") if isinstance(step.input, dict) else ""
            counts.append((TOOL_ERRORS, _field(tool or "unknown", output.get("error_code") or "tool_error"), 1))
        pending.add(counts, sums)
    except Exception:  # noqa: BLE001 - after the commit; the step stands, the count is lost
        _warn("metrics: could not count a step")


def record_lease_takeovers(count: int) -> None:
    if count:
        try:
            redis_client().hincrby(TAKEOVERS, "total", count)
        except Exception:  # noqa: BLE001
            _warn("metrics: could not record lease takeovers")


def _split(raw: bytes) -> list[str]:
    return raw.decode().split(SEP)


class Collector:
    """Builds every family at scrape time (see the module docstring)."""

    def collect(self):
        pending.flush()  # this process's own latest counts
        client = redis_client()
        pipe = client.pipeline(transaction=False)
        for key in (STEPS, TOKENS, COST, TOOL_ERRORS, LATENCY, TAKEOVERS):
            pipe.hgetall(key)
        steps, tokens, cost, tool_errors, latency, takeovers = pipe.execute()
        yield _gauge_tasks()
        family = CounterMetricFamily("agentos_steps", "Committed steps by kind and status.", labels=["kind", "status"])
        for field, value in sorted(steps.items()):
            family.add_metric(_split(field), int(value))
        yield family
        family = CounterMetricFamily("agentos_model_tokens", "Model tokens by model, prompt version and direction.",
                                     labels=["model", "prompt_version", "direction"])
        for field, value in sorted(tokens.items()):
            family.add_metric(_split(field), int(value))
        yield family
        family = CounterMetricFamily("agentos_model_cost_usd", "Model cost in USD by model and prompt version "
                                     "(steps whose model has a price).", labels=["model", "prompt_version"])
        for field, value in sorted(cost.items()):
            family.add_metric(_split(field), float(value))
        yield family
        yield _histogram(latency)
        family = CounterMetricFamily("agentos_tool_errors", "Failed tool calls by tool and error code.",
                                     labels=["tool", "code"])
        for field, value in sorted(tool_errors.items()):
            family.add_metric(_split(field), int(value))
        yield family
        yield CounterMetricFamily("agentos_lease_takeovers", "Tasks handed to another worker by the requeue job "
                                  "(their worker's lease lapsed, or their queue message was lost).",
                                  value=int(takeovers.get(b"total", 0)))
        yield _gauge_queues()
        live = GaugeMetricFamily("agentos_live_clients", "Connected live clients (websocket, SSE, waiting execute).")
        live.add_metric([], client.zcard(LIVE_CLIENTS))
        yield live


def _gauge_tasks() -> GaugeMetricFamily:
    from django.db.models import Count

    from tasks.models import Task, TaskStatus

    counts = dict(Task.objects.order_by().values_list("status").annotate(n=Count("pk")))
    family = GaugeMetricFamily("agentos_tasks", "Tasks by status.", labels=["status"])
    for status in TaskStatus.values:
        family.add_metric([status], counts.get(status, 0))
    return family


def _histogram(latency: dict) -> HistogramMetricFamily:
    family = HistogramMetricFamily("agentos_model_latency_seconds", "Model step latency by model.", labels=["model"])
    by_model: dict[str, dict[str, float]] = {}
    for field, value in latency.items():
        model, key = _split(field)
        by_model.setdefault(model, {})[key] = float(value)
    for model, values in sorted(by_model.items()):
        buckets = [(str(bound), values.get(str(bound), 0.0)) for bound in LATENCY_BUCKETS]
        buckets.append(("+Inf", values.get("count", 0.0)))
        family.add_metric([model], buckets, sum_value=values.get("sum", 0.0))
    return family


def _gauge_queues() -> GaugeMetricFamily:
    from agentos.celery import app, waiting_messages

    names = sorted(set(app.amqp.queues) or {app.conf.task_default_queue})
    family = GaugeMetricFamily("agentos_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"])
    for name in names:  # every message priority of the queue counted (tasks/fairness.py)
        family.add_metric([name], waiting_messages(name))
    return family


def render() -> bytes:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    return generate_latest(registry)
