"""A small pool of tool processes that runs pure tools under hard limits.

A pure tool (``ToolSpec.pure``: computation only, no I/O, no database, no context) runs in
one of ``TOOL_PROCESS_POOL_SIZE`` pre-started processes (tools/sandbox_child.py), never in
the caller's process. Whatever its arguments, a call is bounded from outside the tool:

- wall clock: the caller waits at most the tool's timeout, then SIGKILLs that process and
  starts a replacement in the background (concurrent.futures' process pool cannot kill one
  worker; this pool owns its processes, so it can);
- memory: each process's address space is capped (RLIMIT_AS, TOOL_PROCESS_MEMORY_MB), so
  an allocation past it is a MemoryError in the tool process, not the host's OOM killer;
- CPU: RLIMIT_CPU per job, a backstop should the parent be gone;
- result size: answers over MAX_ANSWER_BYTES are refused.

The caller's thread waits on a pipe, holding no GIL: a CPU-bound tool no longer stalls the
web process's other requests. Children are fresh interpreters (``python -m``), so they
inherit no database connection, no Django state and, with the minimal environment given
to them, no secrets. They exit when their pipe closes, i.e. when this process ends.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAX_ANSWER_BYTES = 8 * 1024 * 1024
START_TIMEOUT_SECONDS = 30.0  # a cold interpreter on a loaded machine
WAIT_GRACE_SECONDS = 10.0


class SandboxTimeout(Exception):
    """The tool did not answer within its timeout; its process was killed."""


class SandboxBusy(Exception):
    """No tool process became free in time (all busy, or none could be started)."""


class SandboxCrashed(Exception):
    """The tool process died during the call (CPU limit, a crash); it was replaced."""


class SandboxFailed(Exception):
    """The tool raised; ``kind`` is tool_error, invalid_arguments, memory or error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


def dotted_path(obj: Any) -> str:
    """``module:qualname`` of a top-level function or class, as the tool process imports it."""
    qualname = obj.__qualname__
    if "<locals>" in qualname:
        raise ValueError(f"{qualname} is not importable: a pure tool's handler and model must be top-level")
    return f"{obj.__module__}:{qualname}"


def _child_env() -> dict[str, str]:
    # Nothing of this process's environment: no DATABASE_URL, REDIS_URL, keys or secrets.
    # The interpreter is started by its absolute path, and text is UTF-8 whatever the locale.
    return {"PYTHONPATH": str(PROJECT_ROOT), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUTF8": "1"}


class _Worker:
    """One tool process and the two pipe ends that talk to it."""

    def __init__(self, *, memory_mb: int, preload: Iterable[str]) -> None:
        job_read, job_write = os.pipe()
        answer_read, answer_write = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tools.sandbox_child", "--memory-mb", str(memory_mb),
                 "--preload", ",".join(preload)],
                stdin=job_read, stdout=answer_write, cwd=PROJECT_ROOT, env=_child_env(), close_fds=True)
        finally:
            os.close(job_read)
            os.close(answer_write)
        self.jobs = Connection(job_write, readable=False)
        self.answers = Connection(answer_read, writable=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float) -> None:
        if not self.answers.poll(timeout):
            raise SandboxBusy(f"the tool process did not start within {timeout:g} s")
        json.loads(self.answers.recv_bytes(1024))

    def call(self, job: dict, timeout: float) -> dict:
        try:
            self.jobs.send_bytes(json.dumps(job).encode())
            if not self.answers.poll(max(0.0, timeout)):
                raise SandboxTimeout
            return json.loads(self.answers.recv_bytes(MAX_ANSWER_BYTES))
        except (EOFError, BrokenPipeError, ConnectionResetError):
            raise SandboxCrashed("the tool process stopped during the call (CPU limit or crash)") from None
        except OSError as error:  # recv_bytes: the answer is larger than MAX_ANSWER_BYTES
            raise SandboxFailed("error", f"the result is too large ({error})") from None

    def kill(self) -> None:
        try:
            self.process.kill()
        except ProcessLookupError:
            pass
        self.process.wait()
        self.jobs.close()
        self.answers.close()


class ProcessPool:
    """Pre-started tool processes; each serves one call at a time."""

    def __init__(self, *, size: int, memory_mb: int, preload: Iterable[str]) -> None:
        self.size, self.memory_mb, self.preload = size, memory_mb, tuple(preload)
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._workers: set[_Worker] = set()
        self._lock = threading.Lock()
        self._started = False
        self._closed = False

    def start(self) -> None:
        """Start the processes in the background (idempotent); calls wait for the first free one."""
        with self._lock:
            if self._started or self._closed:
                return
            self._started = True
        for _ in range(self.size):
            self._replace()

    def _replace(self) -> None:
        threading.Thread(target=self._spawn, name="tool-process-start", daemon=True).start()

    def _spawn(self) -> None:
        delay = 0.5
        while not self._closed:
            worker = None
            try:
                worker = _Worker(memory_mb=self.memory_mb, preload=self.preload)
                worker.wait_ready(START_TIMEOUT_SECONDS)
            except Exception:
                logger.exception("could not start a tool process; trying again in %.1f s", delay)
                if worker is not None:
                    worker.kill()
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            with self._lock:
                if self._closed:
                    worker.kill()
                    return
                self._workers.add(worker)
            self._idle.put(worker)
            return

    def _retire(self, worker: _Worker) -> None:
        with self._lock:
            self._workers.discard(worker)
        worker.kill()
        self._replace()

    def run(self, *, handler: str, model: str | None, arguments: Any, timeout: float,
            cpu_seconds: float | None = None, wait_for_process: float | None = None) -> Any:
        """Run ``handler`` (a dotted path) on ``arguments`` in a tool process; its result, or
        SandboxTimeout / SandboxBusy / SandboxCrashed / SandboxFailed. ``cpu_seconds``: the
        kernel's CPU-time backstop (RLIMIT_CPU), the timeout by default. ``wait_for_process``:
        how long to wait for a free process, by default the timeout plus WAIT_GRACE_SECONDS
        (a cold start, or a process being replaced)."""
        self.start()
        if wait_for_process is None:
            wait_for_process = timeout + WAIT_GRACE_SECONDS
        try:
            worker = self._idle.get(timeout=wait_for_process)
        except queue.Empty:
            raise SandboxBusy(f"no tool process was free within {wait_for_process:g} s") from None
        job = {"handler": handler, "model": model, "arguments": arguments,
               "cpu_seconds": timeout if cpu_seconds is None else cpu_seconds}
        try:
            answer = worker.call(job, timeout)
        except (SandboxTimeout, SandboxCrashed, SandboxFailed):
            # Killed, not reused: a late answer must never be read by the next caller.
            self._retire(worker)
            raise
        except BaseException:
            self._retire(worker)
            raise
        if answer.get("ok"):
            self._idle.put(worker)
            return answer.get("result")
        if answer.get("kind") == "memory":
            self._retire(worker)  # a fresh process, rather than one whose heap hit the cap
        else:
            self._idle.put(worker)
        raise SandboxFailed(str(answer.get("kind")), str(answer.get("message")))

    def pids(self) -> list[int]:
        with self._lock:
            return sorted(worker.pid for worker in self._workers)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._workers = list(self._workers), set()
        for worker in workers:
            worker.kill()


class SharedPool:
    """One lazily made :class:`ProcessPool` per process: made on first use, stopped by
    :meth:`reset` and at exit; a forked child (a prefork Celery worker) forgets its parent's
    pool instead of sharing its pipes."""

    def __init__(self, make: Callable[[], ProcessPool]) -> None:
        self._make = make
        self._pool: ProcessPool | None = None
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget_after_fork)
        atexit.register(self.reset)

    def get(self) -> ProcessPool:
        with self._lock:
            if self._pool is None:
                self._pool = self._make()
            return self._pool

    def reset(self) -> None:
        """Stop the pool's processes; the next call starts new ones (tests, shutdown)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def _forget_after_fork(self) -> None:
        self._pool, self._lock = None, threading.Lock()


def _tool_pool() -> ProcessPool:
    from django.conf import settings

    from tools.registry import pure_tool_modules

    return ProcessPool(size=getattr(settings, "TOOL_PROCESS_POOL_SIZE", 2),
                       memory_mb=getattr(settings, "TOOL_PROCESS_MEMORY_MB", 256), preload=pure_tool_modules())


_tools = SharedPool(_tool_pool)


def get_pool() -> ProcessPool:
    """This process's pool of tool processes, created from settings on first use."""
    return _tools.get()


def reset_pool() -> None:
    """Stop this process's tool processes; the next call starts new ones (tests, shutdown)."""
    _tools.reset()
