"""GET /healthz: 200 only when database+pgvector, Redis, channel layer and a worker are ok."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_healthz_ok_with_a_worker_then_503_when_the_worker_is_killed(worker, client):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["down"] == []
    assert set(body["components"]) == {"database", "redis", "channel_layer", "worker"}
    assert body["components"]["database"]["pgvector"]
    assert worker.extra["node"] in body["components"]["worker"]["workers"]

    worker.kill()
    started = time.monotonic()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["down"] == ["worker"]
    assert time.monotonic() - started < 5


@pytest.mark.django_db
def test_healthz_without_any_worker_is_503_naming_it(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert "worker" in body["down"]
    assert body["components"]["redis"]["ok"] is True
    assert body["components"]["channel_layer"]["ok"] is True


def healthz_in_subprocess(**env_overrides: str) -> tuple[int, dict]:
    """Run /healthz in a fresh process with a different configuration."""
    script = (
        "import json, django; django.setup()\n"
        "from django.test import Client\n"
        "r = Client().get('/healthz')\n"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))\n"
    )
    from django.conf import settings

    env = dict(os.environ, DJANGO_SETTINGS_MODULE="agentos.settings", AGENTOS_TESTING="1",
               SECRET_KEY=settings.SECRET_KEY, REDIS_URL=settings.REDIS_URL)
    env.update(env_overrides)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    return answer["status"], answer["body"]


@pytest.mark.slow
def test_database_without_pgvector_is_reported(db):
    # The machine's stock PostgreSQL 15 has no pgvector: a real "extension missing" case.
    status, body = healthz_in_subprocess(DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres")
    assert status == 503
    assert "database" in body["down"]
    assert "pgvector" in body["components"]["database"]["error"]


@pytest.mark.slow
def test_database_unreachable_is_reported(db):
    status, body = healthz_in_subprocess(DATABASE_URL="postgres://postgres@127.0.0.1:1/agentos")
    assert status == 503
    assert "database" in body["down"]


@pytest.mark.slow
def test_redis_unreachable_is_reported(db):
    from agentos.testing import test_database_url

    status, body = healthz_in_subprocess(DATABASE_URL=test_database_url(), REDIS_URL="redis://127.0.0.1:1")
    assert status == 503
    assert {"redis", "channel_layer", "worker"} <= set(body["down"])
    assert body["components"]["database"]["ok"] is True
