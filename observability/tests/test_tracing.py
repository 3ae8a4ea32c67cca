"""Traces: the span tree of one task, GenAI attributes, export over OTLP/HTTP to a loopback
receiver from a real worker, and nothing at all when no endpoint is configured."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from observability import tracing
from observability.tests.conftest import run_to_end
from tasks.models import Task


def _by_id(spans):
    return {span.context.span_id: span for span in spans}


def _ancestors(span, index) -> list[str]:
    names = []
    while span.parent is not None and span.parent.span_id in index:
        span = index[span.parent.span_id]
        names.append(span.name)
    return names


@pytest.mark.django_db(transaction=True)
def test_one_task_makes_the_expected_span_tree(agents_defaults, user, auth_client, memory_spans):
    response = auth_client.post("/api/v1/tasks/", {"query": "compute 12 * 7"}, format="json",
                                HTTP_TRACEPARENT="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert response.status_code == 201
    task = Task.objects.get(pk=response.json()["task_id"])
    assert task.trace_parent.startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert run_to_end(task.id) == "finished"

    spans = memory_spans.get_finished_spans()
    index = _by_id(spans)
    assert {span.context.trace_id for span in spans} == {0x0af7651916cd43dd8448eb211c80319c}, \
        "the caller's trace continues through the request, the task and every slice"
    http = next(s for s in spans if s.name == "HTTP POST /api/v1/tasks/")
    assert http.attributes["http.response.status_code"] == 201 and http.kind.name == "SERVER"
    root = next(s for s in spans if s.name == "task")
    assert root.parent.span_id == http.context.span_id and root.attributes["agentos.task_id"] == str(task.id)
    slices = [s for s in spans if s.name == "task.slice"]
    assert slices and all(s.parent.span_id == root.context.span_id for s in slices)

    chat = [s for s in spans if s.name == "chat offline-rules"]
    assert len(chat) >= 3
    for span in chat:
        assert _ancestors(span, index)[:2] == [index[span.parent.span_id].name, "task.slice"]
        assert index[span.parent.span_id].name.startswith("step ")
        attributes = span.attributes
        assert attributes["gen_ai.system"] == "offline" and attributes["gen_ai.request.model"] == "offline-rules"
        assert attributes["gen_ai.usage.input_tokens"] > 0 and attributes["gen_ai.usage.output_tokens"] > 0
        assert tuple(attributes["gen_ai.response.finish_reasons"]) == ("stop",)
        assert "gen_ai.input.messages" not in attributes, "no prompt text unless enabled"
    plan_step = next(s for s in spans if s.name == "step plan")
    assert plan_step.attributes["agentos.step.index"] == 1 and plan_step.attributes["agentos.step.status"] == "ok"
    tool = next(s for s in spans if s.name == "execute_tool calculator")
    assert index[tool.parent.span_id].name == "step tool"
    assert tool.attributes["gen_ai.tool.name"] == "calculator"
    assert _ancestors(tool, index)[-3:] == ["task.slice", "task", "HTTP POST /api/v1/tasks/"]


@pytest.mark.django_db(transaction=True)
def test_prompt_and_completion_text_only_when_enabled(agents_defaults, user, memory_spans, monkeypatch):
    from tasks.services import task_create

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    task = task_create(owner=user, query="compute 12 * 7")
    run_to_end(task.id)
    chat = next(s for s in memory_spans.get_finished_spans() if s.name.startswith("chat "))
    assert "compute 12 * 7" in chat.attributes["gen_ai.input.messages"]
    assert chat.attributes["gen_ai.output.messages"]


@pytest.mark.django_db(transaction=True)
def test_nothing_is_traced_or_exported_when_no_endpoint_is_set(agents_defaults, user, monkeypatch):
    from opentelemetry import trace

    from tasks.services import task_create

    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    tracing.configure_from_environment()
    assert not tracing.enabled() and tracing.tracer() is None
    # No SDK provider in the process: the API's default, which records nothing.
    assert not hasattr(trace.get_tracer_provider(), "add_span_processor")
    task = task_create(owner=user, query="compute 12 * 7")
    assert run_to_end(task.id) == "finished"
    task.refresh_from_db()
    assert task.trace_parent == ""


class _Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: keeps the span names of each protobuf export."""

    def do_POST(self):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        server = self.server
        with server.lock:
            for resource_spans in request.resource_spans:
                service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        attributes = {a.key: a.value for a in span.attributes}
                        server.spans.append((self.path, service.get("service.name"), span.name, attributes))
            if {"task.slice", "chat offline-rules", "execute_tool calculator"} <= {s[2] for s in server.spans}:
                server.done.set()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.spans, server.lock, server.done = [], threading.Lock(), threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_worker_exports_its_spans_over_otlp_http(agents_defaults, user, make_worker, receiver):
    from tasks.services import task_create
    from tasks.tests.waiting import wait_status

    make_worker(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.server_port}",
                OTEL_SERVICE_NAME="agentos-worker", OTEL_BSP_SCHEDULE_DELAY="50")
    task = task_create(owner=user, query="compute 12 * 7")
    wait_status(task, "completed", timeout=60)
    assert receiver.done.wait(30), f"spans received: {[name for _, _, name, _ in receiver.spans]}"
    with receiver.lock:
        spans = list(receiver.spans)
    assert {path for path, *_ in spans} == {"/v1/traces"}
    assert {service for _, service, _, _ in spans} == {"agentos-worker"}
    chat = next(attributes for _, _, name, attributes in spans if name == "chat offline-rules")
    assert chat["gen_ai.request.model"].string_value == "offline-rules"
    assert chat["gen_ai.usage.output_tokens"].int_value > 0
    assert {"task.slice", "step plan", "step tool"} <= {name for _, _, name, _ in spans}
