"""OpenTelemetry tracing: on when an OTLP endpoint is configured, absent otherwise.

- On: ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (and
  ``OTEL_SDK_DISABLED`` is not true): each process (web, worker) builds an SDK tracer
  provider whose batch processor sends spans over OTLP/HTTP (protobuf); the exporter reads
  the other standard variables itself (headers, timeout, compression, certificates), and
  the resource reads ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` (service name
  ``agentos`` by default).
- Off: no provider at all. The hooks (observability/hooks.py) test one module global and
  open no span; no SDK object exists, nothing is exported.

The trace of a task: ``HTTP <method> <route>`` (the request that created it, when there was
one) → ``task`` → ``task.slice`` (one per slice, on whichever worker) → ``step <kind>`` →
``chat <model>`` (GenAI semantic conventions) or ``execute_tool <name>``. The ``task`` span
is opened and closed when the task row is created, and its W3C ``traceparent`` is stored on
the task (``Task.trace_parent``): every slice, on any worker and however late (a resume
days later, a requeue by the beat job), continues that trace without anything in the
Celery message.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

INSTRUMENTATION = "agentos"
_propagator = TraceContextTextMapPropagator()
_provider = None  # the SDK TracerProvider of this process, or None (tracing off)
_tracer = None


def endpoint_configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure_from_environment() -> None:
    """Called once per process (the app's ready()): the OTLP pipeline, if configured."""
    if _provider is not None or not endpoint_configured():
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or "agentos"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)  # for libraries that trace through the global API
    install(provider)


def install(provider):
    """Use ``provider`` (an SDK TracerProvider, or None to turn tracing off) in this process;
    the previous one is returned. The tests install one with an in-memory exporter."""
    global _provider, _tracer
    previous = _provider
    _provider = provider
    _tracer = provider.get_tracer(INSTRUMENTATION) if provider is not None else None
    return previous


def enabled() -> bool:
    return _tracer is not None


def tracer():
    return _tracer


def flush(timeout_millis: int = 5000) -> None:
    if _provider is not None:
        _provider.force_flush(timeout_millis)


def capture_content() -> bool:
    """Prompt and completion text go into spans only when this standard variable is true."""
    value = os.environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "")
    return value.strip().lower() == "true"


def context_from(traceparent: str):
    """The context whose parent is the span named by a ``traceparent`` ('' -> a new trace)."""
    if not traceparent:
        return None
    return _propagator.extract({"traceparent": traceparent})


def current_traceparent() -> str:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent", "")


def task_created(task) -> str:
    """A ``task`` span for a new task (a child of the current span, e.g. the HTTP request
    that created it), closed at once; its traceparent, stored on the task ('' when off)."""
    if _tracer is None:
        return ""
    attributes = {"agentos.task_id": str(task.pk), "agentos.task.trigger": str(task.trigger or "")}
    with _tracer.start_as_current_span("task", kind=trace.SpanKind.INTERNAL, attributes=attributes):
        return current_traceparent()
