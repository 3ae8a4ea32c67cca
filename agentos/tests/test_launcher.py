"""The README's run command: everything up, healthz 200, Ctrl-C leaves nothing behind."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from agentos.testing import free_port

ROOT = Path(__file__).resolve().parents[2]


def processes_with_var_dir(var_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("AGENTOS_VAR_DIR") == str(var_dir):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def healthz(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for(predicate, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(message)


def start_launcher(var_dir: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "AGENTOS_TESTING", "REDIS_DB_BASE", "SECRET_KEY")}
    # Heartbeats every 0.5 s: a killed worker's heartbeat expires 2 s later (/healthz).
    env.update(AGENTOS_VAR_DIR=str(var_dir), PORT=str(port), CELERY_WORKER_CONCURRENCY="4", CELERY_WORKER_PROCESSES="1",
               WORKER_HEARTBEAT_SECONDS="0.5")
    return subprocess.Popen([sys.executable, "-m", "agentos.launcher", "run"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def up(url: str) -> bool:
    try:
        return healthz(url)[0] == 200
    except (OSError, ValueError):
        return False


@pytest.mark.slow
def test_run_command_starts_everything_and_ctrl_c_stops_everything(tmp_path):
    var_dir, port = tmp_path / "var", free_port()
    url = f"http://127.0.0.1:{port}"
    launcher = start_launcher(var_dir, port)
    try:
        wait_for(lambda: up(url), 120, "healthz never returned 200")
        status, body = healthz(url)
        assert all(component["ok"] for component in body["components"].values()), body
        password = (var_dir / "admin_password").read_text()

        # Killing the worker is visible in /healthz within seconds (the launcher restarts it later).
        worker = next(p for p in processes_with_var_dir(var_dir) if "worker" in " ".join(p.cmdline()))
        worker.kill()
        started = time.monotonic()

        def worker_down() -> bool:
            status, body = healthz(url)
            return status == 503 and "worker" in body["down"]

        wait_for(worker_down, 5, "the killed worker still looked alive after 5 s")
        assert time.monotonic() - started < 5
        wait_for(lambda: up(url), 90, "the launcher did not restart the worker")

        launcher.send_signal(signal.SIGINT)
        output, _ = launcher.communicate(timeout=60)
        assert "AgentOS stopped." in output
        assert processes_with_var_dir(var_dir) == []

        # Second start reuses the same data: the first user is not created again.
        launcher = start_launcher(var_dir, port)
        wait_for(lambda: up(url), 120, "healthz never returned 200 on the second start")
        assert (var_dir / "admin_password").read_text() == password
        launcher.send_signal(signal.SIGINT)
        output, _ = launcher.communicate(timeout=60)
        assert "Created user" not in output
    finally:
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGINT)
            output, _ = launcher.communicate(timeout=60)
            print(output)  # shown by pytest when the test fails
        for process in processes_with_var_dir(var_dir):
            process.kill()
    assert processes_with_var_dir(var_dir) == []


@pytest.mark.slow
def test_a_failed_set_up_step_stops_the_embedded_servers(tmp_path):
    var_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "AGENTOS_TESTING", "REDIS_DB_BASE", "SECRET_KEY")}
    env.update(AGENTOS_VAR_DIR=str(var_dir), PORT=str(free_port()), LLM_PROVIDER="magic")
    result = subprocess.run([sys.executable, "-m", "agentos.launcher", "run"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode != 0
    assert "LLM_PROVIDER must be one of" in result.stderr
    assert (var_dir / "postgres" / "pgdata" / "PG_VERSION").exists(), "the servers were started first"
    assert processes_with_var_dir(var_dir) == []


def test_the_default_topology_is_one_worker_process_per_core_with_many_threads():
    from agentos.launcher import worker_commands

    default = worker_commands({})
    assert default["processes"] == (os.cpu_count() or 1) and default["concurrency"] == 256
    names = [command[command.index("-n") + 1] for command in default["commands"] if "-n" in command]
    assert len(set(names)) == len(names), "two worker processes of one host need distinct node names"
    chosen = worker_commands({"CELERY_WORKER_PROCESSES": "3", "CELERY_WORKER_CONCURRENCY": "64"})
    assert chosen["processes"] == 3 and all("64" in command for command in chosen["commands"])
