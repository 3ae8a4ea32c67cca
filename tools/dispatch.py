"""Deterministic dispatch: look the tool up, validate its arguments, run it bounded.

:func:`dispatch` never raises for a tool problem. Unknown or disabled tools, invalid
arguments, timeouts, the memory cap and handler exceptions come back as
``ToolOutcome(ok=False)`` with a one-line error and an ``error_code`` the orchestrator puts
into the model's context.

Where a tool runs (docs/tools.md):

- a pure tool (``ToolSpec.pure``) in a tool process (tools/sandbox.py): killed at its
  timeout, its address space capped, so no argument can stall or exhaust this process;
- any other tool (I/O: HTTP, memory) on a thread of this process, abandoned at its timeout;
  its handler bounds its own I/O (sizes, connect and read timeouts).

Either way the caller's thread only waits, so a web request invoking a tool never holds
the interpreter while the tool works.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from django.db import connections
from jsonschema.exceptions import best_match
from pydantic import ValidationError
from referencing.exceptions import NoSuchAnchor, PointerToNowhere, Unresolvable

from tools import sandbox
from tools.bounds import size_problem
from tools.registry import ToolError, ToolSpec, UnknownTool, get_tool, is_enabled

logger = logging.getLogger(__name__)
ERROR_LIMIT = 300

# I/O tools run on these threads so a slow one can be abandoned at its timeout. A timed-out
# handler keeps its thread until it returns; every such handler has its own I/O limits.
_EXECUTOR = ThreadPoolExecutor(max_workers=16, thread_name_prefix="tool")


@dataclass
class ToolContext:
    owner_id: int | None
    task_id: str | None = None
    idempotency_key: str | None = None  # "<task_id>:<step index>" for side-effecting calls
    workspace_id: int | None = None  # the task's workspace: where the memory tools search and store


@dataclass
class ToolOutcome:
    ok: bool
    result: Any
    error: str | None
    error_code: str | None
    duration_ms: int

    def as_dict(self) -> dict:
        body: dict[str, Any] = {"ok": self.ok, "duration_ms": self.duration_ms}
        if self.ok:
            body["result"] = self.result
        else:
            body["error"], body["error_code"] = self.error, self.error_code
        return body


def one_line(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= ERROR_LIMIT else flat[: ERROR_LIMIT - 1] + "…"


def argument_problem(spec: ToolSpec, arguments: Any) -> tuple[str, str | None] | None:
    """(message, field path) of the most relevant schema violation, or None when valid.

    Sizes (maxItems, maxLength, maxProperties) are checked first, without looking at the
    items, so an oversized list is refused before any per-item work. Then the args model
    (the schema's source) validates strictly, which is fast (100,000 numbers: ~2 ms, where
    the JSON Schema validator takes ~1.6 s); the validator runs only to word a refusal."""
    oversized = size_problem(spec.parameters, arguments)
    if oversized:
        message, path = oversized
        where = f" at '{path}'" if path else ""
        return one_line(f"invalid arguments for {spec.name}{where}: {message}"), path
    model_error: ValidationError | None = None
    if spec.args_model is not None:
        try:
            spec.args_model.model_validate(arguments, strict=True)
        except ValidationError as error:
            model_error = error
        else:
            return None
    try:
        if model_error is None and spec.validator.is_valid(arguments):
            return None
        error = best_match(spec.validator.iter_errors(arguments))
    except (Unresolvable, RecursionError) as failure:
        # A schema that is valid JSON Schema but cannot be followed (an MCP server's): a
        # refusal naming why, never an exception out of the dispatcher.
        return one_line(f"invalid arguments for {spec.name}: its input schema cannot be used: "
                        f"{_schema_failure(failure)}"), None
    if error is None:
        if model_error is None:
            return None
        first = model_error.errors()[0]
        path = ".".join(str(part) for part in first["loc"]) or None
        where = f" at '{path}'" if path else ""
        return one_line(f"invalid arguments for {spec.name}{where}: {first['msg']}"), path
    path = ".".join(str(part) for part in error.absolute_path) or None
    where = f" at '{path}'" if path else ""
    return one_line(f"invalid arguments for {spec.name}{where}: {error.message}"), path


def _schema_failure(failure: Exception) -> str:
    if isinstance(failure, RecursionError):
        return "its references loop without going into the arguments"
    # jsonschema wraps referencing's error, which names the reference (a pointer without its '#')
    cause = failure.__cause__ if isinstance(failure.__cause__, Unresolvable) else failure
    if isinstance(cause, PointerToNowhere):
        ref = f"#{cause.ref}"
    elif isinstance(cause, NoSuchAnchor):
        ref = f"{cause.ref}#{cause.anchor}"
    else:
        ref = str(getattr(cause, "ref", ""))
    return f"$ref '{ref[:100]}' points nowhere"


def _call(spec: ToolSpec, arguments: dict, context: ToolContext) -> Any:
    parsed = spec.args_model.model_validate(arguments) if spec.args_model else arguments
    return spec.handler(parsed, context)


def _run(spec: ToolSpec, arguments: dict, context: ToolContext) -> Any:
    try:
        return _call(spec, arguments, context)
    finally:
        # Connections are per thread: close this pool thread's one so idle pool threads do
        # not hold database sessions (a reconnect costs a few ms, only for tools that query).
        connections.close_all()


def _failure(code: str, message: str, started: float) -> ToolOutcome:
    return ToolOutcome(ok=False, result=None, error=one_line(message), error_code=code,
                       duration_ms=int((time.monotonic() - started) * 1000))


def _callable_spec(name: str, arguments: Any, known_enabled: bool, started: float) -> ToolSpec | ToolOutcome:
    """The tool's spec, or the outcome that refuses the call (unknown, disabled, waits for a
    person, invalid arguments)."""
    try:
        spec = get_tool(name)
    except UnknownTool as error:
        return _failure("unknown_tool", str(error), started)
    if not known_enabled and not is_enabled(name):
        return _failure("disabled", f"tool '{name}' is disabled by an administrator", started)
    if spec.waits_for_human:
        return _failure("needs_task", f"{name} waits for a person's answer, so it only runs inside a task", started)
    problem = argument_problem(spec, arguments)
    if problem:
        return _failure("invalid_arguments", problem[0], started)
    return spec


def _run_pure(spec: ToolSpec, arguments: dict) -> Any:
    model = sandbox.dotted_path(spec.args_model) if spec.args_model else None
    return sandbox.get_pool().run(handler=sandbox.dotted_path(spec.handler), model=model, arguments=arguments,
                                  timeout=spec.timeout_s)


def _run_on_thread(spec: ToolSpec, arguments: dict, context: ToolContext) -> Any:
    future = _EXECUTOR.submit(_run, spec, arguments, context)
    try:
        return future.result(timeout=spec.timeout_s)
    except FutureTimeout:
        if not future.done():
            future.cancel()
            raise sandbox.SandboxTimeout from None
        raise  # a TimeoutError the handler itself raised


_SANDBOX_CODES = {"tool_error": "tool_error", "invalid_arguments": "invalid_arguments", "memory": "memory_limit"}


def _run_bounded(spec: ToolSpec, arguments: dict, context: ToolContext, started: float) -> ToolOutcome:
    name = spec.name
    try:
        result = _run_pure(spec, arguments) if spec.pure else _run_on_thread(spec, arguments, context)
    except sandbox.SandboxTimeout:
        return _failure("timeout", f"{name} did not finish within {spec.timeout_s:g} s", started)
    except sandbox.SandboxFailed as error:
        code = _SANDBOX_CODES.get(error.kind, "tool_error")
        if code == "memory_limit":
            return _failure(code, f"{name} needed more memory than its limit allows", started)
        prefix = {"tool_error": f"{name}: ", "invalid_arguments": f"invalid arguments for {name}: "}
        return _failure(code, prefix.get(error.kind, f"{name} failed: ") + error.message, started)
    except sandbox.SandboxBusy as error:
        logger.warning("tool %s: %s", name, error)
        return _failure("tool_error", f"{name} failed: {error}", started)
    except sandbox.SandboxCrashed as error:
        return _failure("tool_error", f"{name} failed: {error}", started)
    except ToolError as error:
        # A ToolError may name its kind (``code``), e.g. an MCP server that is unreachable.
        return _failure(getattr(error, "code", None) or "tool_error", f"{name}: {error}", started)
    except ValidationError as error:
        first = error.errors()[0]
        return _failure("invalid_arguments", f"invalid arguments for {name}: {first['msg']}", started)
    except Exception as error:  # any handler failure becomes a compact error for the model
        logger.warning("tool %s failed", name, exc_info=True)
        return _failure("tool_error", f"{name} failed: {type(error).__name__}: {error}", started)
    return ToolOutcome(ok=True, result=result, error=None, error_code=None,
                       duration_ms=int((time.monotonic() - started) * 1000))


def dispatch(*, name: str, arguments: dict, context: ToolContext, known_enabled: bool = False) -> ToolOutcome:
    """Look the tool up, validate the arguments, run it bounded (see the module docstring).

    ``known_enabled``: the caller has just checked that an administrator has not disabled
    the tool (a task slice loads the enabled tools when it starts), so the settings query
    is skipped.
    """
    started = time.monotonic()
    spec = _callable_spec(name, arguments, known_enabled, started)
    if isinstance(spec, ToolOutcome):
        return spec
    return _run_bounded(spec, arguments, context, started)
