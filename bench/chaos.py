"""Chaos soak: K tasks run while the worker, the web process, beat and Redis are killed.

    python -m bench.chaos [--tasks 50] [--latency-ms 1000] [--min-gap 1.5 --max-gap 4] [--threads 4] [--load 200]

Everything runs on a private Redis server (the embedded Valkey binary on a free port, stopped and
started by the harness) and a private database. Two workers (threads pool), daphne and beat
run as separate processes; at random moments one of them is SIGKILLed (Redis is stopped
with SIGTERM) and started again shortly after. Websocket clients follow some of the tasks
and reconnect with ``?after=<highest index seen>`` whenever their connection drops.

When every task has finished the checks run (see :mod:`bench.chaos_checks`): each task
completed; its step indexes are 0..N-1 with no gap or duplicate; its step sequence equals
a task run without faults (a repeated plan, tool or model step would show); each
side-effecting tool call stored its effect once per idempotency key (a completed task's result
entry may wait for beat's remember_results job, up to a minute, when a kill fell between the
result step and its memory write); each websocket
client received every step. Prints one JSON summary (runs, kills, lost, duplicated, ...).

``--load N`` first creates N tasks concurrently over the API, without faults, and checks
that none got a 5xx and all completed.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench import harness, processes
from bench.chaos_checks import check_tasks, follow_tasks

# Parsed by the offline planner into three arithmetic subtasks (calculator) and a writing
# subtask that stores a note (memory_store, a side-effecting tool with an idempotency key):
# about 16 steps, 10 of them model calls.
QUERY = "Compute 12 * 7. Compute 13 * 8. Compute 14 * 9. Write a summary note to store in memory."
FINISHED = ("completed", "failed", "cancelled")


@dataclass
class Cluster:
    """The system under test: 2 workers, web, beat and a private Redis."""

    env: dict[str, str]
    redis: harness.PrivateRedis
    port: int
    workers: list[processes.Service] = field(default_factory=list)
    web: processes.Service | None = None
    beat: processes.Service | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, worker_concurrency: int = 8) -> Cluster:
        self.workers = [processes.worker(self.env, concurrency=worker_concurrency, name=f"worker{i}")
                        for i in range(2)]
        self.web = processes.daphne(self.env, port=self.port)
        self.beat = processes.beat(self.env)
        for service in [*self.workers, self.web, self.beat]:
            service.start()
        return self

    def services(self) -> list[processes.Service]:
        return [*self.workers, self.web, self.beat]

    def stop(self) -> None:
        for service in self.services():
            if service is not None:
                service.stop()
        self.redis.stop()


def cluster_env(base: dict[str, str], redis: harness.PrivateRedis, **settings_env: str) -> dict[str, str]:
    env = dict(base)
    env.update(REDIS_URL=redis.url, REDIS_DB_BASE="0", PYTHONUNBUFFERED="1", **settings_env)
    return env


class Chaos(threading.Thread):
    """Kills one victim at a time at random moments until stopped; restarts it shortly after."""

    def __init__(self, cluster: Cluster, *, seed: int, min_gap: float, max_gap: float) -> None:
        super().__init__(daemon=True)
        self.cluster, self.random = cluster, random.Random(seed)
        self.min_gap, self.max_gap = min_gap, max_gap
        self.kills: Counter = Counter()
        self.errors: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        victims: list[str] = []
        while not self.stopping.wait(self.random.uniform(self.min_gap, self.max_gap)):
            if not victims:  # every kind of victim once per round, in a random order
                victims = ["worker", "web", "beat", "redis"]
                self.random.shuffle(victims)
            victim = victims.pop()
            try:
                self._strike(victim)
            except Exception as error:  # a failed restart is reported, and the soak goes on
                self.errors.append(f"{victim}: {error}")

    def _strike(self, victim: str) -> None:
        cluster = self.cluster
        if victim == "redis":
            cluster.redis.stop()
            self.kills["redis"] += 1
            self.stopping.wait(self.random.uniform(0.5, 2.0))
            cluster.redis.start()
            return
        service = {"worker": self.random.choice(cluster.workers), "web": cluster.web, "beat": cluster.beat}[victim]
        service.kill()
        self.kills[victim] += 1
        self.stopping.wait(self.random.uniform(0.2, 1.5))
        service.start()

    def heal(self) -> None:
        """After the soak: every service up again (a restart may have failed while Redis was down)."""
        if not self.cluster.redis.alive():
            self.cluster.redis.start()
        for service in self.cluster.services():
            if not service.alive():
                service.start()


def create_over_api(url: str, token: str, count: int, *, threads: int = 50, query: str = QUERY) -> dict:
    """POST count tasks concurrently; returns their ids and the status codes seen."""
    import httpx

    statuses: Counter = Counter()
    task_ids: list[str] = []
    lock = threading.Lock()

    def create(number: int) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"}, timeout=60,
                          trust_env=False) as client:
            response = client.post("/api/v1/tasks/", json={"query": query})
        with lock:
            statuses[response.status_code] += 1
            if response.status_code == 201:
                task_ids.append(str(response.json()["task_id"]))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(create, range(count)))
    return {"task_ids": task_ids, "statuses": dict(statuses)}


def wait_for(task_ids: list[str], timeout: float) -> float:
    from django.db import close_old_connections

    from tasks.models import Task

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        close_old_connections()
        if not Task.objects.filter(pk__in=task_ids).exclude(status__in=FINISHED).exists():
            break
        time.sleep(0.5)
    return time.monotonic() - started


LOAD_QUERY = "Compute 12 * 7 and summarize the result."


def run_load(cluster: Cluster, token: str, *, count: int, timeout: float, query: str = LOAD_QUERY) -> dict:
    from tasks.models import Task

    started = time.monotonic()
    created = create_over_api(cluster.url, token, count, query=query)
    wait_for(created["task_ids"], timeout)
    statuses = Counter(Task.objects.filter(pk__in=created["task_ids"]).values_list("status", flat=True))
    server_errors = sum(n for code, n in created["statuses"].items() if code >= 500)
    return {"tasks": count, "http_statuses": created["statuses"], "server_errors": server_errors,
            "task_statuses": dict(statuses), "seconds": round(time.monotonic() - started, 1),
            "ok": server_errors == 0 and statuses.get("completed", 0) == count}


def reference_kinds(cluster: Cluster, token: str, timeout: float = 60) -> list[tuple]:
    """The step sequence of one task run without faults (the offline provider is deterministic)."""
    from tasks.models import Step

    (task_id,) = create_over_api(cluster.url, token, 1, threads=1)["task_ids"]
    wait_for([task_id], timeout)
    return list(Step.objects.filter(task_id=task_id).order_by("index").values_list("kind", "agent", "subtask_id"))


def soak(cluster: Cluster, user, token: str, *, tasks: int, seed: int, min_gap: float, max_gap: float,
         followers: int, timeout: float) -> dict:
    reference = reference_kinds(cluster, token)
    created = create_over_api(cluster.url, token, tasks)
    task_ids = created["task_ids"]
    chaos = Chaos(cluster, seed=seed, min_gap=min_gap, max_gap=max_gap)
    follower = follow_tasks(cluster.url, token, task_ids[:followers], timeout=timeout)
    started = time.monotonic()
    chaos.start()
    waited = wait_for(task_ids, timeout)
    chaos.stopping.set()
    chaos.join()
    chaos.heal()
    streams = follower.result(timeout=60)
    checks = check_tasks(task_ids, reference=reference, streams=streams)
    return {
        "runs": len(task_ids),
        "create_statuses": created["statuses"],
        "kills": dict(chaos.kills),
        "kills_total": sum(chaos.kills.values()),
        "restart_errors": chaos.errors,
        "seconds": round(time.monotonic() - started, 1),
        "timed_out": waited >= timeout,
        **checks,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--latency-ms", type=int, default=1000)
    parser.add_argument("--min-gap", type=float, default=1.5)
    parser.add_argument("--max-gap", type=float, default=4.0)
    parser.add_argument("--followers", type=int, default=10, help="tasks followed by a websocket client")
    parser.add_argument("--load", type=int, default=200, help="tasks created concurrently first (0: skip)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (2 workers)")
    parser.add_argument("--lease-seconds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)

    env = harness.django_environment("agentos_chaos")
    try:
        from agentos.testing import free_port

        user, token = harness.bench_user()
        base = harness.child_env(OFFLINE_LLM_LATENCY_MS=str(args.latency_ms),
                                 TASK_LEASE_SECONDS=str(args.lease_seconds))
        cluster = Cluster(env=cluster_env(base, env.redis), redis=env.redis, port=free_port()).start(
            worker_concurrency=args.threads)
        try:
            load = run_load(cluster, token, count=args.load, timeout=args.timeout) if args.load else None
            result = soak(cluster, user, token, tasks=args.tasks, seed=seed, min_gap=args.min_gap,
                          max_gap=args.max_gap, followers=args.followers, timeout=args.timeout)
        finally:
            cluster.stop()
    finally:
        env.close()
    return harness.emit("chaos", {"benchmark": "chaos", "seed": seed, "latency_ms": args.latency_ms,
                                  "lease_seconds": args.lease_seconds, **result, "load": load})


if __name__ == "__main__":
    main()
