"""Worker, web and beat processes that a benchmark can SIGKILL and start again.

Unlike agentos.testing's helpers, these wait for readiness by reading the process's own
log (a worker prints "ready."), not through the caller's Celery app, because the chaos
harness runs them on a private Redis the caller's settings know nothing about; daphne
keeps one port across restarts so clients can reconnect to the same address.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field

from agentos.testing import ManagedProcess, spawn
from bench.harness import ROOT, wait_for_port

LOG_DIR = ROOT / "var" / "bench" / "logs"


@dataclass
class Service:
    """One restartable child process (its own session, so a kill takes its children too).

    Each start is an agentos.testing.ManagedProcess (kill, stop and log come from there)."""

    name: str
    command: list[str]
    env: dict[str, str]
    ready: str | None = None  # a line in the log that means "up"; None: wait for `port`
    port: int | None = None
    current: ManagedProcess | None = None
    starts: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def process(self) -> subprocess.Popen | None:
        return self.current.process if self.current else None

    def start(self, timeout: float = 60) -> Service:
        self.current = spawn(self.name, self.command, self.env, log_dir=LOG_DIR)
        self.starts += 1
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        if self.port is not None:
            try:
                wait_for_port(self.port, timeout)
            except RuntimeError:
                raise RuntimeError(f"{self.name} did not listen:\n{self.log()[-3000:]}") from None
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited at start:\n{self.log()[-3000:]}")
            if self.ready is None or self.ready in self.log():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready within {timeout}s:\n{self.log()[-3000:]}")

    def alive(self) -> bool:
        return self.current is not None and self.current.alive()

    def kill(self) -> None:
        """SIGKILL, like a crash or the OOM killer: no cleanup, no ack of messages in hand."""
        if self.current:
            self.current.kill()

    def stop(self, timeout: float = 15) -> None:
        if self.current:
            self.current.stop(timeout)

    def log(self) -> str:
        return self.current.log() if self.current else ""


def worker(env: dict[str, str], *, concurrency: int, pool: str = "threads", name: str = "worker") -> Service:
    node = f"{name}-{uuid.uuid4().hex[:6]}@localhost"
    command = [sys.executable, "-m", "celery", "-A", "agentos", "worker", "-l", "INFO", "-n", node,
               "--pool", pool, "--concurrency", str(concurrency), "--without-gossip", "--without-mingle",
               "--without-heartbeat"]
    # INFO: the worker logs through settings.LOGGING, and its " ready." line is an INFO line.
    service = Service(name=name, command=command, env={**env, "LOG_LEVEL": "INFO"}, ready=" ready.")
    service.extra["node"] = node
    return service


def beat(env: dict[str, str]) -> Service:
    schedule = LOG_DIR / f"beat-{uuid.uuid4().hex[:6]}"
    command = [sys.executable, "-m", "celery", "-A", "agentos", "beat", "-l", "INFO", "--max-interval", "1",
               "-s", str(schedule)]
    return Service(name="beat", command=command, env={**env, "LOG_LEVEL": "INFO"}, ready="beat: Starting")


def daphne(env: dict[str, str], *, port: int) -> Service:
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "agentos.asgi:application"]
    service = Service(name="web", command=command, env=env, port=port)
    service.extra["url"] = f"http://127.0.0.1:{port}"
    return service
