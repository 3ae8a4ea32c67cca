"""The few calls the task runtime makes into observability (each one line in its caller).

- runner (tasks/runner.py): :func:`slice_scope` around a slice, :func:`budget_action` after
  each decision, :func:`traced_execute` around each action's execution;
- execution (tasks/execution.py): :func:`model_call` instead of ``provider.complete``;
- step store (tasks/store.py): :func:`before_store` (the step's cost) and :func:`after_store`
  (the metrics, once the step has committed).

With tracing off, each costs a context-variable write or a dict look-up: no span objects.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager, nullcontext

from opentelemetry.trace import SpanKind, Status, StatusCode

from agentos.logfilters import step_index_var, task_id_var, worker_id_var
from observability import tracing
from observability.cost import budget_action, charge

logger = logging.getLogger("agentos.llm.calls")
__all__ = ["after_store", "before_store", "budget_action", "model_call", "slice_scope", "traced_execute"]

_KINDS = {"CallPlan": "plan", "CallAgent": "llm", "CallSummary": "summary", "CallSynthesis": "synthesis",
          "RunTool": "tool"}


@contextmanager
def slice_scope(task, worker_id: str):
    """The slice's log context (task id, worker id) and, with tracing on, its span (a child
    of the task's span, wherever and whenever the slice runs)."""
    tokens = (task_id_var.set(str(task.pk)), worker_id_var.set(worker_id), step_index_var.set(None))
    try:
        tracer = tracing.tracer()
        if tracer is None:
            yield
            return
        attributes = {"agentos.task_id": str(task.pk), "agentos.worker_id": worker_id,
                      "agentos.slice.first_step": task.step_count}
        with tracer.start_as_current_span("task.slice", context=tracing.context_from(task.trace_parent),
                                          kind=SpanKind.CONSUMER, attributes=attributes):
            yield
    finally:
        for var, token in zip((task_id_var, worker_id_var, step_index_var), tokens, strict=True):
            var.reset(token)


def traced_execute(execute, run, action):
    """``execute(run, action)`` with the step index in the log context and, with tracing
    on, a ``step <kind>`` span (and an ``execute_tool <name>`` span for a tool call)."""
    index = run.state.next_index
    step_index_var.set(index)
    tracer = tracing.tracer()
    if tracer is None:
        return execute(run, action)
    kind = _KINDS.get(type(action).__name__, "decision")
    attributes = {"agentos.task_id": str(run.task.pk), "agentos.step.index": index, "agentos.step.kind": kind}
    with tracer.start_as_current_span(f"step {kind}", attributes=attributes) as span:
        if kind == "tool":
            with tracer.start_as_current_span(f"execute_tool {action.tool}", attributes={
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": action.tool,
                    "gen_ai.tool.call.id": f"{run.task.pk}:{index}"}) as tool_span:
                step = execute(run, action)
                _end_tool(tool_span, step)
        else:
            step = execute(run, action)
        if step.kind != kind:  # a decision step (result, error, pause, ...) or a failed action
            span.update_name(f"step {step.kind}")
        span.set_attribute("agentos.step.kind", step.kind)
        span.set_attribute("agentos.step.status", step.status)
        if step.agent:
            span.set_attribute("agentos.agent", step.agent)
        if step.status != "ok":
            span.set_status(Status(StatusCode.ERROR, step.error[:200]))
    return step


def _end_tool(span, step) -> None:
    if step.status != "ok":
        code = (step.output or {}).get("error_code") if isinstance(step.output, dict) else None
        span.set_attribute("error.type", code or "tool_error")
        span.set_status(Status(StatusCode.ERROR, step.error[:200]))


def model_call(provider, request, draft):
    """``provider.complete(request)``, recording on ``draft`` (the step) who served it
    (and its cached tokens); with tracing on, inside a ``chat <model>`` span
    with the GenAI semantic-convention attributes. A failure is logged with its typed code
    and raised again unchanged."""
    from agentos.llm import LLMError
    from tasks.limits import model_slot

    # Providers name themselves (agentos.llm.base.Provider); a stand-in may not.
    name, model = str(getattr(provider, "name", "") or ""), str(getattr(provider, "model", "") or "")
    draft.provider, draft.model = name, model
    tracer = tracing.tracer()
    with _model_span(tracer, name, model, request) if tracer is not None else nullcontext() as span:
        try:
            with model_slot(model, request) as slot:  # no database connection held while waiting (tasks/limits.py)
                result = provider.complete(request)
                slot.settle(result.tokens_in + result.tokens_out)  # the billed tokens replace the estimate
        except LLMError as error:
            logger.warning("model call failed: %s", error.compact(),
                           extra={"error_code": error.code, "error_kind": error.kind, "model": model})
            if span is not None:
                span.set_attribute("error.type", error.code)
            raise
        draft.model = result.model or model
        draft.tokens_cached = int(getattr(result, "tokens_cached", 0) or 0)
        if span is not None:
            _end_model_span(span, result)
    return result


def _model_span(tracer, name: str, model: str, request):
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.system": name,
                  "gen_ai.provider.name": name, "gen_ai.request.model": model,
                  "gen_ai.output.type": "json" if request.response_schema else "text"}
    if request.temperature is not None:
        attributes["gen_ai.request.temperature"] = request.temperature
    if request.max_tokens:
        attributes["gen_ai.request.max_tokens"] = request.max_tokens
    if tracing.capture_content():
        attributes["gen_ai.input.messages"] = json.dumps(request.messages, ensure_ascii=False, default=str)
    return tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes)


def _end_model_span(span, result) -> None:
    span.set_attribute("gen_ai.response.model", result.model or "")
    span.set_attribute("gen_ai.usage.input_tokens", result.tokens_in)
    span.set_attribute("gen_ai.usage.output_tokens", result.tokens_out)
    # A result is only returned for a complete answer (a cut-off one raises TruncatedOutput).
    span.set_attribute("gen_ai.response.finish_reasons", ["stop"])
    span.set_attribute("agentos.tokens_estimated", bool(result.tokens_estimated))
    if tracing.capture_content():
        span.set_attribute("gen_ai.output.messages", json.dumps(
            [{"role": "assistant", "content": result.text}], ensure_ascii=False))


def before_store(task, step, changes: dict) -> None:
    """The step store, before its statement: the step's cost and the task's new total."""
    charge(task, step, changes)


def after_store(task, step) -> None:
    """The step store, once the step is written: count it in the metrics after the commit
    (at once in autocommit), so a step whose transaction rolls back is never counted."""
    from django.conf import settings
    from django.db import transaction

    from observability import metrics

    if not settings.METRICS_ENABLED:
        return
    transaction.on_commit(lambda: metrics.record_step(step))
