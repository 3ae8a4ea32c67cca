"""Deterministic dispatch: look the tool up, validate its arguments, run it within its timeout.

:func:`dispatch` never raises for a tool problem. Unknown or disabled tools, invalid
arguments, timeouts and handler exceptions come back as ``ToolOutcome(ok=False)`` with a
one-line error and an ``error_code`` the orchestrator puts into the model's context.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from django.db import connections
from jsonschema.exceptions import best_match
from pydantic import ValidationError

from tools.registry import ToolError, ToolSpec, UnknownTool, get_tool, is_enabled

logger = logging.getLogger(__name__)
ERROR_LIMIT = 300

# Handlers run on these threads so a slow one can be abandoned at its timeout. A timed-out
# handler keeps its thread until it returns; every handler has its own I/O limits too.
_EXECUTOR = ThreadPoolExecutor(max_workers=16, thread_name_prefix="tool")


class _Wakeup:
    """A pipe per calling thread that a finished call writes a byte to."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        os.set_blocking(self.w, False)

    def ring(self, _future=None) -> None:
        try:
            os.write(self.w, b"\0")
        except BlockingIOError:  # already readable
            pass

    def drain(self) -> None:
        try:
            while os.read(self.r, 64):
                pass
        except BlockingIOError:
            pass

    def __del__(self) -> None:
        os.close(self.r)
        os.close(self.w)


_wakeups = threading.local()


class RunningCall:
    """A handler at work on its thread, as ``while_running`` sees it: ``done()`` once it
    returned or raised; ``fileno()`` is readable by then (and possibly earlier, e.g. when an
    abandoned earlier call of this thread ends: ``done()`` then says no and clears it), so
    a caller can wait for it and for a socket at once."""

    def __init__(self, future) -> None:
        wakeup = getattr(_wakeups, "pipe", None)
        if wakeup is None:
            wakeup = _wakeups.pipe = _Wakeup()
        wakeup.drain()
        self._future, self._wakeup = future, wakeup
        future.add_done_callback(wakeup.ring)

    def done(self) -> bool:
        if self._future.done():
            return True
        self._wakeup.drain()  # a stale byte would keep the descriptor readable
        return self._future.done()

    def fileno(self) -> int:
        return self._wakeup.r


@dataclass
class ToolContext:
    owner_id: int | None
    task_id: str | None = None
    idempotency_key: str | None = None  # "<task_id>:<step index>" for side-effecting calls


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
    """(message, field path) of the most relevant schema violation, or None when valid."""
    if spec.validator.is_valid(arguments):
        return None
    error = best_match(spec.validator.iter_errors(arguments))
    if error is None:
        return None
    path = ".".join(str(part) for part in error.absolute_path) or None
    where = f" at '{path}'" if path else ""
    return one_line(f"invalid arguments for {spec.name}{where}: {error.message}"), path


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


def dispatch(*, name: str, arguments: dict, context: ToolContext, known_enabled: bool = False,
             while_running: Callable[[RunningCall], None] | None = None) -> ToolOutcome:
    """Validate and run one tool call. ``known_enabled``: the caller has just checked that an
    administrator has not disabled the tool (a task slice loads the enabled tools when it
    starts), so the settings query is skipped. ``while_running``: called in the caller's
    thread right after the handler was handed to its own thread, with the RunningCall, so
    both run at once (the orchestrator waits there for the previous step's commit reply or
    the handler's end, whichever comes first); the handler's timeout counts from the start
    of the call. An exception it raises is the caller's, and the call's result is then
    dropped. An inline tool (ToolSpec.inline) runs in the caller's thread; while_running is
    not called for it."""
    started = time.monotonic()
    spec = _callable_spec(name, arguments, known_enabled, started)
    if isinstance(spec, ToolOutcome):
        return spec
    if spec.inline:
        future = None
    else:
        future = _EXECUTOR.submit(_run, spec, arguments, context)
        if while_running is not None:
            while_running(RunningCall(future))
    try:
        if future is None:
            result = _call(spec, arguments, context)
        else:
            result = future.result(timeout=max(0.0, spec.timeout_s - (time.monotonic() - started)))
    except FutureTimeout as error:
        if future is None:  # raised by an inline handler itself (TimeoutError is FutureTimeout)
            return _failure("tool_error", f"{name} failed: {type(error).__name__}: {error}", started)
        future.cancel()
        return _failure("timeout", f"{name} did not finish within {spec.timeout_s:g} s", started)
    except ToolError as error:
        return _failure("tool_error", f"{name}: {error}", started)
    except ValidationError as error:
        first = error.errors()[0]
        return _failure("invalid_arguments", f"invalid arguments for {name}: {first['msg']}", started)
    except Exception as error:  # any handler failure becomes a compact error for the model
        logger.warning("tool %s failed", name, exc_info=True)
        return _failure("tool_error", f"{name} failed: {type(error).__name__}: {error}", started)
    return ToolOutcome(ok=True, result=result, error=None, error_code=None,
                       duration_ms=int((time.monotonic() - started) * 1000))
