"""The embedded PostgreSQL and Redis: started once, shared by processes, data kept."""

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
from agentos import embedded
print(json.dumps({{"pg": embedded.postgres_url(), "redis": embedded.redis_url()}}))
"""


def start_in_process(var_dir: Path) -> subprocess.Popen:
    env = dict(os.environ, AGENTOS_VAR_DIR=str(var_dir))
    return subprocess.Popen([sys.executable, "-c", SCRIPT.format(root=str(ROOT))], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def private_var(tmp_path, monkeypatch):
    """A private var/ directory so this test starts its own servers (on other ports)."""
    from agentos import embedded

    var_dir = tmp_path / "var"
    monkeypatch.setenv("AGENTOS_VAR_DIR", str(var_dir))
    yield var_dir
    embedded.stop_all()


@pytest.mark.slow
def test_two_processes_share_one_server_and_data_survives_restart(private_var):
    from agentos import embedded

    first, second = start_in_process(private_var), start_in_process(private_var)
    outputs = [json.loads(p.communicate(timeout=120)[0]) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0
    assert outputs[0] == outputs[1], "both processes must get the same servers"
    postmaster_pid = (private_var / "postgres" / "pgdata" / "postmaster.pid").read_text().split()[0]
    # exactly one postmaster for this data directory
    postmasters = subprocess.run(["pgrep", "-f", f"postgres -D {private_var}"], capture_output=True, text=True)
    assert postmasters.stdout.split() == [postmaster_pid]

    url = outputs[0]["pg"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (value text)")
        conn.execute("INSERT INTO kept VALUES ('still here')")
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    client = redis.Redis.from_url(outputs[0]["redis"])
    client.set("kept", "yes")
    client.close()

    embedded.stop_all()
    assert not embedded.postgres_running() and not embedded.redis_running()

    assert embedded.postgres_url() == url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT value FROM kept").fetchone() == ("still here",)
    client = redis.Redis.from_url(embedded.redis_url())
    assert client.get("kept") == b"yes"
    client.close()
