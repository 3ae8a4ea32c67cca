"""The README's two commands.

``python -m agentos.launcher run``  migrate, load defaults, then web (daphne), a Celery
worker and Celery beat, with their logs on this terminal; Ctrl-C stops them all and the
embedded servers.

``python -m agentos.launcher test [pytest args]``  ruff, then pytest against the embedded
PostgreSQL/Redis (or DATABASE_URL/REDIS_URL); embedded servers this command started are
stopped at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
STOP_TIMEOUT = 15.0
RESTART_DELAY = 3.0
MAX_RESTART_DELAY = 60.0
DEFAULT_WORKER_THREADS = 256


def _embedded_mode() -> bool:
    return not os.environ.get("DATABASE_URL")


def _fail(message: str) -> None:
    print(f"agentos: {message}", file=sys.stderr)
    sys.exit(2)


def _ensure_services() -> tuple[bool, bool]:
    """Start the embedded servers the configuration needs; return which were started here."""
    sys.path.insert(0, str(ROOT))
    from agentos import embedded

    started_pg = started_redis = False
    if not os.environ.get("DATABASE_URL"):
        started_pg = not embedded.postgres_running()
        embedded.postgres_url()
    if not os.environ.get("REDIS_URL"):
        started_redis = not embedded.redis_running()
        embedded.redis_url()
    return started_pg, started_redis


def _stop_services(postgres: bool, redis: bool) -> None:
    from agentos import embedded

    if redis:
        embedded.redis_stop()
    if postgres:
        embedded.postgres_stop()


def _manage(*args: str) -> None:
    result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(result.returncode)


def _pump(name: str, stream, lock: threading.Lock) -> None:
    """Copy a child's output to the terminal, one prefixed line at a time."""
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace").rstrip()
        with lock:
            print(f"{name:>6} | {line}", flush=True)


def worker_commands(env, *, processes: int | None = None, concurrency: int | None = None) -> dict:
    """The Celery worker processes ``run`` starts: CELERY_WORKER_PROCESSES of them (default:
    one per core), each with the threads pool and CELERY_WORKER_CONCURRENCY threads (default
    256: a thread mostly waits on the model; the connection pool, DB_POOL_MAX_SIZE, bounds
    the PostgreSQL sessions). Each process gets its own node name."""
    processes = processes or int(env.get("CELERY_WORKER_PROCESSES") or 0) or os.cpu_count() or 1
    concurrency = concurrency or int(env.get("CELERY_WORKER_CONCURRENCY") or DEFAULT_WORKER_THREADS)
    pool = env.get("CELERY_WORKER_POOL", "threads")
    commands = [[PYTHON, "-m", "celery", "-A", "agentos", "worker", "-l", "INFO", "--pool", pool,
                 "--concurrency", str(concurrency), *(["-n", f"worker{i + 1}@%h"] if processes > 1 else [])]
                for i in range(processes)]
    return {"processes": processes, "concurrency": concurrency, "pool": pool, "commands": commands}


def run() -> None:
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    embedded = _embedded_mode()
    if embedded:
        _ensure_services()
    try:
        for command in (("check", "--fail-level", "ERROR"), ("migrate", "--noinput"), ("bootstrap",),
                        ("ensure_admin",)):
            _manage(*command)
    except SystemExit:
        # A failed set-up step must not leave the embedded servers running behind it.
        if embedded:
            from agentos import embedded as services

            services.stop_all()
        raise

    workers = worker_commands(os.environ)["commands"]
    commands = {
        "web": [PYTHON, "-m", "daphne", "-b", host, "-p", port, "agentos.asgi:application"],
        **{("worker" if len(workers) == 1 else f"worker{i + 1}"): command for i, command in enumerate(workers)},
        "beat": [PYTHON, "-m", "celery", "-A", "agentos", "beat", "-l", "INFO"],
    }
    lock = threading.Lock()
    children = {name: _spawn_child(name, command, lock) for name, command in commands.items()}
    stopping = threading.Event()

    def request_stop(signum, frame) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print(f"\nAgentOS is running at http://{host}:{port}/  (health: http://{host}:{port}/healthz)\n"
          "Press Ctrl-C to stop.\n", flush=True)
    # Supervise: a child that dies (a crash, an OOM kill) is restarted after a growing delay,
    # so one bad moment does not take the system down and a crash loop does not spin.
    delays = dict.fromkeys(children, RESTART_DELAY)
    restart_at: dict[str, float] = {}
    while not stopping.wait(0.5):
        for name, child in children.items():
            if child.poll() is not None and name not in restart_at:
                print(f"agentos: {name} exited with status {child.returncode}; restarting in {delays[name]:.0f}s",
                      file=sys.stderr, flush=True)
                restart_at[name] = time.monotonic() + delays[name]
                delays[name] = min(delays[name] * 2, MAX_RESTART_DELAY)
        for name, when in list(restart_at.items()):
            if time.monotonic() >= when:
                children[name] = _spawn_child(name, commands[name], lock)
                del restart_at[name]
    _shutdown(children)
    if embedded:
        from agentos import embedded as services

        services.stop_all()
    print("AgentOS stopped.", flush=True)


def _spawn_child(name: str, command: list[str], lock: threading.Lock) -> subprocess.Popen:
    # Each child in its own session: Ctrl-C reaches only the launcher, which stops them in order.
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True)
    threading.Thread(target=_pump, args=(name, child.stdout, lock), daemon=True).start()
    return child


def _shutdown(children: dict[str, subprocess.Popen]) -> None:
    for child in children.values():
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in children.values():
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def test(pytest_args: list[str]) -> None:
    lint = subprocess.run([PYTHON, "-m", "ruff", "check", "."], cwd=ROOT)
    if lint.returncode != 0:
        sys.exit(lint.returncode)
    started = _ensure_services()
    try:
        result = subprocess.run([PYTHON, "-m", "pytest", *pytest_args], cwd=ROOT)
    finally:
        _stop_services(*started)
    sys.exit(result.returncode)


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("run", "test"):
        _fail("usage: python -m agentos.launcher run | test [pytest args]")
    os.chdir(ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentos.settings")
    if argv[0] == "run":
        run()
    else:
        test(argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
