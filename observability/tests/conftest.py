"""Fixtures of the observability tests: a price for the offline model, spans in memory,
a clean metrics store, and a helper that runs a task to its end in this process."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tasks.tests.conftest import agents_defaults  # noqa: F401 (a fixture)

INPUT_PRICE, OUTPUT_PRICE = Decimal("1.25"), Decimal("2.50")  # USD per million tokens


@pytest.fixture
def priced(db):
    """The offline model at a price that is not zero (the example row says it is free)."""
    from observability.cost import prices
    from observability.models import ModelPrice

    row, _ = ModelPrice.objects.update_or_create(provider="offline", model="offline-rules", defaults={
        "input_per_million": INPUT_PRICE, "output_per_million": OUTPUT_PRICE, "cached_input_per_million": None})
    prices.invalidate()
    yield row
    prices.invalidate()


@pytest.fixture
def memory_spans():
    """Tracing on in this process, into an in-memory exporter; off again afterwards."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from observability import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = tracing.install(provider)
    yield exporter
    tracing.install(previous)
    provider.shutdown()


@pytest.fixture
def clean_metrics():
    from observability import metrics

    client = metrics.redis_client()
    keys = list(client.scan_iter(match=metrics.PREFIX + "*"))
    if keys:
        client.delete(*keys)
    yield client


def run_to_end(task_id, slices: int = 50) -> str:
    from tasks.runner import run_slice

    outcome = ""
    for _ in range(slices):
        outcome = run_slice(task_id, worker_id="test-worker").outcome
        if outcome != "continue":
            break
    return outcome
