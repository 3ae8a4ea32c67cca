"""Chaos soak (short version of bench/chaos.py) and concurrent load over the API.

Two workers, daphne and beat run as real processes on the test database and on a
private Redis server; while tasks run, each of them (and Redis) is killed at random
moments and started again. Every task must complete with its step indexes 0..N-1, the
same steps as a run without faults, its side effects stored once per idempotency key,
and every websocket client must have received every step.
"""

from __future__ import annotations

import json
import random

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]


@pytest.fixture
def start_cluster(defaults):
    """Starts the system on a private Redis with the given model latency and worker threads."""
    from agentos.testing import free_port, process_env
    from bench.chaos import Cluster, cluster_env
    from bench.harness import PrivateRedis

    started = []

    def start(*, latency_ms: int, threads: int) -> Cluster:
        redis = PrivateRedis.create("test-chaos")
        redis.start()
        env = cluster_env(process_env(), redis, OFFLINE_LLM_LATENCY_MS=str(latency_ms), TASK_LEASE_SECONDS="3",
                          TASK_REQUEUE_INTERVAL="1")
        cluster = Cluster(env=env, redis=redis, port=free_port())
        started.append(cluster)
        return cluster.start(worker_concurrency=threads)

    yield start
    for cluster in started:
        cluster.stop()
        cluster.redis.remove()


@pytest.fixture
def token(user):
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=user).key


def test_load_200_tasks_created_concurrently_complete_without_server_errors(start_cluster, token, capsys):
    from bench.chaos import run_load

    cluster = start_cluster(latency_ms=100, threads=16)
    load = run_load(cluster, token, count=200, timeout=240)
    with capsys.disabled():
        print("\nload:", json.dumps(load))
    assert load["server_errors"] == 0, load
    assert load["task_statuses"] == {"completed": 200}, load


def test_chaos_soak_loses_and_repeats_nothing(start_cluster, user, token, capsys):
    from bench.chaos import soak

    # 30 tasks of about 10 one-second model calls on 2 x 4 threads: roughly a minute of
    # work, long enough for every kind of fault to strike several times.
    cluster = start_cluster(latency_ms=1000, threads=4)
    seed = random.randrange(1 << 30)
    result = soak(cluster, user, token, tasks=30, seed=seed, min_gap=1.0, max_gap=2.5, followers=10, timeout=300)
    with capsys.disabled():
        print("\nchaos:", json.dumps({"seed": seed, **result}))
    assert set(result["kills"]) == {"worker", "web", "beat", "redis"}, result
    assert result["completed"] == result["runs"] == 30, result
    assert not result["index_gaps_or_duplicates"], result
    assert result["lost"] == 0 and result["duplicated"] == 0 and not result["diverged_from_clean_run"], result
    assert result["side_effect_calls"] > 0 and result["side_effect_duplicates"] == 0, result
    assert result["side_effect_missing"] == 0, result
    assert result["websocket_missed"] == 0 and result["websocket_unfinished"] == 0, result
    assert result["ok"], result
