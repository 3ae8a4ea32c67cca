"""The tool process: runs pure tools' handlers one at a time for tools.sandbox.

Started as ``python -m tools.sandbox_child --memory-mb N --preload mod,mod`` with two pipes
on its stdin and stdout, it imports only the standard library and the modules of the pure
tools (no Django, no database connection, no secrets in its environment), caps its address
space with RLIMIT_AS, says it is ready, then answers jobs:

- a job: ``{"handler": "mod:qualname", "model": "mod:qualname" | null, "arguments": {...},
  "cpu_seconds": n}``;
- an answer: ``{"ok": true, "result": ...}`` or ``{"ok": false, "kind": ..., "message": ...}``
  where kind is ``tool_error`` (ToolError), ``invalid_arguments``, ``memory`` (the address
  space cap was hit) or ``error`` (any other exception).

Before each job the soft RLIMIT_CPU is set to the CPU time used so far plus the job's
allowance, so a runaway handler is stopped by the kernel (SIGXCPU) even if the parent
that would kill it at its wall-clock timeout is gone. The process ends when its stdin
pipe closes (the parent exited).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import math
import os
import resource
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any


@functools.lru_cache(maxsize=256)
def _resolve(path: str) -> Any:
    module_name, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def _limit_cpu(seconds: float) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(math.ceil(used + seconds)) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _failure(kind: str, error: BaseException) -> dict:
    message = str(error) if kind == "tool_error" else f"{type(error).__name__}: {error}"
    return {"ok": False, "kind": kind, "message": message[:2000]}


def run_job(job: dict) -> dict:
    from tools.errors import ToolError  # stdlib only

    try:
        handler = _resolve(job["handler"])
        arguments = job["arguments"]
        if job.get("model"):
            from pydantic import ValidationError

            try:
                arguments = _resolve(job["model"]).model_validate(arguments)
            except ValidationError as error:
                first = error.errors()[0]
                return {"ok": False, "kind": "invalid_arguments", "message": str(first.get("msg", error))}
        result = handler(arguments, None)
        return {"ok": True, "result": result}
    except MemoryError as error:
        return _failure("memory", error)
    except ToolError as error:
        return _failure("tool_error", error)
    except Exception as error:  # noqa: BLE001 - any handler failure is the caller's outcome, not this process's end
        return _failure("error", error)


def _encode(answer: dict) -> bytes:
    try:
        return json.dumps(answer, allow_nan=False).encode()
    except (TypeError, ValueError) as error:  # a result that is not JSON
        return json.dumps(_failure("error", error)).encode()


def serve(receive: Connection, send: Connection, *, memory_mb: int) -> None:
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    send.send_bytes(json.dumps({"ready": os.getpid()}).encode())
    while True:
        try:
            job = json.loads(receive.recv_bytes())
        except EOFError:
            return
        _limit_cpu(float(job.get("cpu_seconds") or 10))
        send.send_bytes(_encode(run_job(job)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory-mb", type=int, default=256)
    parser.add_argument("--preload", default="")
    options = parser.parse_args()
    # Ctrl-C in a terminal reaches the whole process group: the parent decides when this ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The pipes become private descriptors; a handler's print() goes to stderr, not into them.
    receive = Connection(os.dup(0), writable=False)
    send = Connection(os.dup(1), readable=False)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for name in filter(None, options.preload.split(",")):
        importlib.import_module(name)
    serve(receive, send, memory_mb=options.memory_mb)


if __name__ == "__main__":
    main()
