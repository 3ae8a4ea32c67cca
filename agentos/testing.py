"""Real processes for tests: a Celery worker and a daphne server on the test database.

Both run as separate OS processes (so a test can SIGKILL them) with the environment of
the test run: the same PostgreSQL server but the test database, and the test Redis
databases (REDIS_DB_BASE).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def current_database_url() -> str:
    db = connection.settings_dict
    password = db.get("PASSWORD") or ""
    auth = f"{db['USER']}:{password}@" if password else f"{db['USER']}@"
    return f"postgres://{auth}{db['HOST']}:{db['PORT']}/{db['NAME']}"


def process_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="agentos.settings",
        DATABASE_URL=current_database_url(),
        REDIS_URL=settings.REDIS_URL,
        REDIS_DB_BASE=str(int(settings.CELERY_BROKER_URL.rsplit("/", 1)[1])),
        AGENTOS_TESTING="1",
        SECRET_KEY=settings.SECRET_KEY,
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ManagedProcess:
    """A child process started for a test; stop() is safe to call more than once."""

    name: str
    process: subprocess.Popen
    log_path: Path
    extra: dict = field(default_factory=dict)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, like a crash: no cleanup, no ack of the message in hand."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 10) -> None:
        if not self.alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def spawn(name: str, command: list[str], env: dict[str, str], *, log_dir: Path = ROOT / "var" / "test-logs"
          ) -> ManagedProcess:
    """Start `command` in its own session (a kill takes its children too), output to a log file."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{uuid.uuid4().hex[:8]}.log"
    handle = open(log_path, "wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                               start_new_session=True)
    return ManagedProcess(name, process, log_path)


def start_worker(*, concurrency: int = 8, pool: str = "threads", queues: str | None = None,
                 env: dict[str, str] | None = None, timeout: float = 30) -> ManagedProcess:
    """Start `celery worker` and wait until it answers a ping."""
    from agentos.celery import app

    node = f"test-{uuid.uuid4().hex[:8]}@localhost"
    command = [sys.executable, "-m", "celery", "-A", "agentos", "worker", "-l", "INFO", "-n", node,
               "--pool", pool, "--concurrency", str(concurrency), "--without-gossip", "--without-mingle"]
    if queues:
        command += ["-Q", queues]
    worker = spawn("worker", command, env or process_env())
    worker.extra["node"] = node
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not worker.alive():
            raise RuntimeError(f"worker exited at start:\n{worker.log()[-3000:]}")
        replies = app.control.ping(destination=[node], timeout=0.5) or []
        if replies:
            return worker
    worker.stop()
    raise RuntimeError(f"worker did not answer a ping within {timeout}s:\n{worker.log()[-3000:]}")


def start_beat(*, env: dict[str, str] | None = None) -> ManagedProcess:
    command = [sys.executable, "-m", "celery", "-A", "agentos", "beat", "-l", "INFO",
               "--max-interval", "1"]
    return spawn("beat", command, env or process_env())


def start_daphne(*, env: dict[str, str] | None = None, timeout: float = 30) -> ManagedProcess:
    """Start daphne on a free loopback port; `server.extra["url"]` is its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "agentos.asgi:application"]
    server = spawn("daphne", command, env or process_env())
    server.extra["url"] = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"daphne exited at start:\n{server.log()[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"daphne did not listen within {timeout}s:\n{server.log()[-3000:]}")
