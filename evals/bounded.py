"""Checks whose cost depends on what the user wrote run in a check process, stopped at a timeout.

A ``regex`` check, or a ``json_schema`` check (its ``pattern`` keywords, its ``$ref``
chains), can take exponential time on some outputs: ``(.|\\s)*END`` on a few dozen spaces,
``^(a+)+$`` in a schema, an ``anyOf`` of two ``$ref`` repeated twenty levels deep. Python's
``re`` holds the interpreter while it matches and the eval workers are threads, so in the
worker such a check would stall every other job of that process. Instead these checks run
in a pool of check processes (tools.sandbox.ProcessPool, the tool processes' machinery,
with its own processes so eval checks never wait behind agents' tools, or the reverse):
the worker's thread waits on a pipe without holding the interpreter, and a check that has
not answered within EVAL_CHECK_TIMEOUT_SECONDS is killed with its process. Its verdict is
an ``error`` that says it timed out, which fails the item.

Why not a regular expression engine with linear time (RE2): it would bound ``regex``
checks, but not schema validation, which is exponential in pure Python with ``$ref``
chains, and it would change the syntax that existing checks use. One bound covers both.

The static refusal of risky patterns when a check is saved (evals.regexguard) stays: it
explains the common catastrophic shapes at once; this bound covers everything else.
"""

from __future__ import annotations

from typing import Any

from tools import sandbox

HANDLER = "evals.checks:bounded_verdict"


def _make_pool() -> sandbox.ProcessPool:
    from django.conf import settings

    return sandbox.ProcessPool(size=settings.EVAL_CHECK_PROCESS_POOL_SIZE, memory_mb=settings.TOOL_PROCESS_MEMORY_MB,
                               preload=["evals.checks"])


_checks = sandbox.SharedPool(_make_pool)


def get_pool() -> sandbox.ProcessPool:
    return _checks.get()


def reset_pool() -> None:
    _checks.reset()


def run_in_check_process(arguments: dict[str, Any]) -> dict:
    """The verdict that ``evals.checks.bounded_verdict`` gives on ``arguments`` (the check and
    the output), computed in a check process; an ``error`` verdict when it timed out or its
    process failed."""
    from django.conf import settings

    timeout = float(settings.EVAL_CHECK_TIMEOUT_SECONDS)
    kind = arguments["check"]["type"]
    try:
        return get_pool().run(handler=HANDLER, model=None, arguments=arguments, timeout=timeout)
    except sandbox.SandboxTimeout:
        message = (f"timed out: the check did not finish within {timeout:g} s on this output and was stopped "
                   "(a pattern that backtracks, or a schema too costly to apply)")
    except sandbox.SandboxFailed as error:
        message = ("the check needed more memory than its limit allows" if error.kind == "memory"
                   else f"the check failed: {error.message}")
    except sandbox.SandboxBusy:
        message = "the check could not be applied: no check process was free in time (too many slow checks at once)"
    except sandbox.SandboxCrashed:
        message = "the check could not be applied: its check process stopped (CPU limit or crash)"
    return {"type": kind, "verdict": "error", "message": message[:300]}
