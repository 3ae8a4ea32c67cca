"""Plumbing shared by the benchmarks: a private database and Redis, Django, processes, JSON.

Every benchmark runs on its own database on the configured PostgreSQL server (DATABASE_URL,
or the embedded server under var/) and on a private Redis server (the embedded Valkey binary on a
free port), so a benchmark never shares queues or rows with a running system or a test run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


# --- numbers ---------------------------------------------------------------------------

def percentile(values: list[float], fraction: float) -> float:
    """Linear-interpolated percentile (fraction in 0..1) of a non-empty list."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """median / p95 / mean of durations given in seconds, in milliseconds."""
    if not seconds:
        return {"median_ms": float("nan"), "p95_ms": float("nan"), "mean_ms": float("nan"), "n": 0}
    return {
        "median_ms": round(statistics.median(seconds) * 1000, 3),
        "p95_ms": round(percentile(seconds, 0.95) * 1000, 3),
        "mean_ms": round(statistics.fmean(seconds) * 1000, 3),
        "n": len(seconds),
    }


def emit(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """Print the benchmark's one JSON object and keep a copy under bench/results/."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=None, sort_keys=False, default=str)
    (RESULTS / f"{name}.json").write_text(text + "\n")
    print(text, flush=True)
    return result


def machine() -> dict[str, Any]:
    import platform

    import psutil

    return {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version()}


# --- PostgreSQL ------------------------------------------------------------------------

def server_url() -> str:
    """URL of the PostgreSQL server the product uses (DATABASE_URL, or the embedded one)."""
    url = os.environ.get("BENCH_SERVER_URL") or os.environ.get("DATABASE_URL")
    if not url:
        sys.path.insert(0, str(ROOT))
        from agentos import embedded

        url = embedded.postgres_url()
    return url


def database_url(name: str, server: str | None = None) -> str:
    parts = urlsplit(server or server_url())
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def psycopg_url(url: str) -> str:
    """psycopg wants postgresql:// (Django's URLs may say postgres://)."""
    return "postgresql://" + url.split("://", 1)[1]


def recreate_database(name: str) -> str:
    """Drop and create database `name` on the server; return its URL."""
    import psycopg

    with psycopg.connect(psycopg_url(database_url("postgres")), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                     "pg_backend_pid()", [name])
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(name)


# --- Redis -----------------------------------------------------------------------------

@dataclass
class PrivateRedis:
    """A Redis server of our own on a free loopback port, which we may stop and kill."""

    port: int
    directory: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @classmethod
    def create(cls, name: str) -> PrivateRedis:
        from agentos.testing import free_port

        directory = ROOT / "var" / "bench" / f"redis-{name}-{os.getpid()}"
        directory.mkdir(parents=True, exist_ok=True)
        return cls(port=free_port(), directory=directory)

    def start(self, timeout: float = 15) -> None:
        from agentos import embedded

        binary = embedded.redis_server_binary()
        # Persistence like the embedded server (append-only file), so a stop/start keeps the queue.
        command = [str(binary), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                   "--appendonly", "yes", "--save", "", "--maxclients", "4000", "--databases", "16"]
        log = open(self.directory / "redis.log", "ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, timeout)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM: Redis flushes its append-only file and exits."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(15)

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
            self.process.wait(15)

    def remove(self) -> None:
        import shutil

        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def wait_for_port(port: int, timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


# --- Django ----------------------------------------------------------------------------

@dataclass
class BenchEnvironment:
    db_name: str
    db_url: str
    redis: PrivateRedis

    def close(self) -> None:
        from django.db import connections

        from observability import metrics

        try:
            metrics.flush()  # the step counts still pending, while the bench Redis is there
            connections.close_all()
        finally:
            self.redis.remove()


def django_environment(db_name: str, **settings_env: str) -> BenchEnvironment:
    """A fresh database `db_name` (migrated, defaults loaded) and a private Redis, then django.setup().

    `settings_env` are settings read from the environment (OFFLINE_LLM_LATENCY_MS,
    TASK_LEASE_SECONDS, ...); child processes started with :func:`child_env` inherit them.
    """
    sys.path.insert(0, str(ROOT))
    if "django" in sys.modules and "django.conf" in sys.modules:
        from django.conf import settings

        if settings.configured:
            raise RuntimeError("django_environment() must run before Django is configured")
    from agentos import embedded

    # SIGTERM (a timeout, Ctrl-C from a supervisor) unwinds like an exception, so the
    # benchmark's `finally` stops the Redis server and the processes it started.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    db_url = recreate_database(db_name)
    redis = PrivateRedis.create(db_name)
    redis.start()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="agentos.settings",
        DATABASE_URL=db_url,
        REDIS_URL=redis.url,
        REDIS_DB_BASE="0",
        SECRET_KEY=os.environ.get("SECRET_KEY") or embedded.secret_key(),
        SECURE_COOKIES="false",
        API_THROTTLE_RATE="1000000/hour",
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        PYTHONUNBUFFERED="1",
    )
    os.environ.update(settings_env)
    import django
    from django.core.management import call_command

    django.setup()
    # The loaders' summaries would mix with the benchmark's one JSON object on stdout.
    with contextlib.redirect_stdout(io.StringIO()):
        call_command("migrate", verbosity=0, interactive=False)
        call_command("bootstrap", verbosity=0)
    return BenchEnvironment(db_name=db_name, db_url=db_url, redis=redis)


def child_env(**overrides: str) -> dict[str, str]:
    """Environment for a worker / daphne / beat on the benchmark's database and Redis."""
    env = dict(os.environ)
    env.pop("AGENTOS_TESTING", None)
    env.update(overrides)
    return env


def bench_user(username: str = "bench") -> tuple[Any, str]:
    """A user and its API token."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
    token, _ = Token.objects.get_or_create(user=user)
    return user, token.key


def session_cookie(user: Any) -> str:
    """A logged-in session for `user` (websocket clients send it as the sessionid cookie)."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def rss_tree(pid: int) -> int:
    """Resident memory in bytes of a process and its children."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total
