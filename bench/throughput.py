"""Throughput of I/O-bound agents: hundreds of tasks created at once, 1 s model latency.

    python -m bench.throughput [--tasks 500 2000] [--latency-ms 1000] [--openai]
                               [--workers N --concurrency T] [--env KEY=VALUE ...]

AgentOS: the worker processes ``make run`` starts (agentos.launcher.worker_commands: the
default topology, or --workers/--concurrency to compare settings) plus beat serve
`--tasks` tasks created at once with the offline provider's simulated latency
(OFFLINE_LLM_LATENCY_MS), or with --openai through the OpenAI provider against a loopback
OpenAI-compatible server that answers after the latency (bench/loopback_llm.py).
Peer, in the same run: LangGraph async, the same number of runs at once in one event loop
with AsyncPostgresSaver (durability "sync"), the same step shape (bench/langgraph_async.py).

Measured for each: model steps committed per second in the 10-90 % window of all model
steps, tasks lost (not completed), peak RSS (AgentOS: all worker and beat processes,
sampled every 0.2 s), the machine's load average. Target: AgentOS >= 2x LangGraph at 500.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

from bench import harness

DB_NAME = "agentos_bench_throughput"
MODEL_KINDS = ("plan", "llm", "summary", "synthesis")


class RSSSampler(threading.Thread):
    """Peak of the summed resident memory of the given processes (and their children)."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids, self.peak, self.stopping = pids, 0, threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.2):
            self.peak = max(self.peak, sum(harness.rss_tree(pid) for pid in self.pids))


def wait_finished(task_ids: list[str], timeout: float) -> int:
    from tasks.models import Task

    deadline = time.monotonic() + timeout
    while True:
        active = Task.objects.filter(pk__in=task_ids, status__in=("queued", "running", "waiting_provider")).count()
        if active == 0 or time.monotonic() > deadline:
            return active
        time.sleep(0.5)


def rates(task_ids: list[str], latency_s: float, tasks: int) -> dict:
    from django.db.models import Count

    from tasks.models import Step, Task

    steps = Step.objects.filter(task_id__in=task_ids)
    model_times = sorted(t.timestamp() for t in steps.filter(kind__in=MODEL_KINDS).values_list("created_at", flat=True))
    low, high = int(len(model_times) * 0.1), int(len(model_times) * 0.9)
    window = model_times[high] - model_times[low] if model_times else 0.0
    model_rate = (high - low) / window if window > 0 else 0.0
    statuses = dict(Task.objects.filter(pk__in=task_ids).values_list("status").annotate(n=Count("id")))
    return {
        "model_steps": len(model_times),
        "steps": steps.count(),
        "model_steps_per_s": round(model_rate, 2),
        "fraction_of_ideal": round(model_rate / (tasks / latency_s), 3),
        "statuses": statuses,
        "lost": tasks - statuses.get("completed", 0),
    }


def wait_ready(nodes: list[str], timeout: float) -> None:
    """Until every worker answers a ping (its log is quiet at LOG_LEVEL=WARNING)."""
    from agentos.celery import app

    deadline = time.monotonic() + timeout
    waiting = set(nodes)
    while waiting and time.monotonic() < deadline:
        for reply in app.control.ping(destination=list(waiting), timeout=0.5) or []:
            waiting -= set(reply)
    if waiting:
        raise RuntimeError(f"workers not ready: {sorted(waiting)}")


def step_script(task_id: str) -> list[str]:
    """The kinds of a finished task's steps (trigger left out), as the peer's node script."""
    from bench.langgraph_agent import script_from_kinds
    from tasks.models import Step

    kinds = list(Step.objects.filter(task_id=task_id).exclude(kind="trigger").order_by("index")
                 .values_list("kind", flat=True))
    return script_from_kinds(kinds)


def measure_agentos(*, tasks: int, latency_ms: int, query: str, timeout: float, workers: int | None,
                    concurrency: int | None, env: dict[str, str]) -> tuple[dict, list[str]]:
    from agentos.launcher import worker_commands
    from bench import processes
    from bench.agentos_driver import create_tasks

    user, _ = harness.bench_user()
    child = harness.child_env(**env)
    topology = worker_commands(child, processes=workers, concurrency=concurrency)
    nodes = [f"w{i}-{os.getpid()}@localhost" for i in range(topology["processes"])]
    services = [processes.Service(name=f"worker{i}", command=[*command, "-n", node, "--without-gossip",
                                                              "--without-mingle"], env=child, ready=None)
                for i, (command, node) in enumerate(zip(topology["commands"], nodes, strict=True))]
    beat = processes.beat(child)
    beat.ready = None  # its "Starting" line is below LOG_LEVEL=WARNING
    services.append(beat)
    # The burst: every task is created (its message queued) before the workers start.
    started = time.monotonic()
    task_ids = create_tasks(owner=user, query=query, count=tasks)
    created = time.monotonic() - started
    load_before = os.getloadavg()
    started = time.monotonic()
    sampler = RSSSampler([])
    try:
        for service in services:
            service.start(timeout=120)
            sampler.pids.append(service.process.pid)
        sampler.start()
        wait_ready(nodes, timeout=120)
        unfinished = wait_finished(task_ids, timeout)
        elapsed = time.monotonic() - started
    finally:
        sampler.stopping.set()
        if sampler.is_alive():
            sampler.join()
        for service in services:
            service.stop()
    result = {"system": "agentos", "processes": topology["processes"], "threads_per_process": topology["concurrency"],
              "db_pool_max_size": child.get("DB_POOL_MAX_SIZE", "default"), "tasks": tasks,
              "create_seconds": round(created, 1), "unfinished": unfinished, "seconds": round(elapsed, 1),
              "peak_rss_mb": round(sampler.peak / 2**20, 1), **rates(task_ids, latency_ms / 1000, tasks),
              "load_average": [round(x, 2) for x in load_before] + [round(os.getloadavg()[0], 2)]}
    return result, task_ids


def measure_langgraph(*, script: list[str], tasks: int, latency_ms: int) -> dict:
    from bench import langgraph_async

    url = harness.psycopg_url(harness.recreate_database(DB_NAME + "_lg"))
    load_before = os.getloadavg()
    result = langgraph_async.measure(url=url, script=script, tasks=tasks, latency_s=latency_ms / 1000)
    return {"system": "langgraph_async", **result,
            "load_average": [round(x, 2) for x in load_before] + [round(os.getloadavg()[0], 2)]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--latency-ms", type=int, default=1000)
    parser.add_argument("--clauses", type=int, default=1, help="subtasks per task")
    parser.add_argument("--workers", type=int, help="worker processes (default: the launcher's)")
    parser.add_argument("--concurrency", type=int, help="threads per worker (default: the launcher's)")
    parser.add_argument("--env", nargs="*", default=[], help="KEY=VALUE settings for the AgentOS processes")
    parser.add_argument("--openai", action="store_true", help="also a run through a loopback OpenAI server")
    parser.add_argument("--no-peer", action="store_true", help="AgentOS only")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)

    bench_env = harness.django_environment(DB_NAME, OFFLINE_LLM_LATENCY_MS=str(args.latency_ms))
    runs: list[dict] = []
    try:
        from bench.steps import query_with

        query = query_with(args.clauses)
        for tasks in args.tasks:
            agentos, task_ids = measure_agentos(tasks=tasks, latency_ms=args.latency_ms, query=query,
                                                timeout=args.timeout, workers=args.workers,
                                                concurrency=args.concurrency, env=env)
            runs.append(agentos)
            if not args.no_peer:
                script = step_script(task_ids[0])
                peer = measure_langgraph(script=script, tasks=tasks, latency_ms=args.latency_ms)
                runs.append(peer)
                agentos["ratio_to_langgraph"] = round(agentos["model_steps_per_s"] / peer["model_steps_per_s"], 2) \
                    if peer["model_steps_per_s"] else None
        if args.openai:
            from bench.loopback_llm import LoopbackLLM

            with LoopbackLLM(latency_s=args.latency_ms / 1000) as server:
                openai, _ = measure_agentos(tasks=args.tasks[0], latency_ms=args.latency_ms, query=query,
                                            timeout=args.timeout, workers=args.workers,
                                            concurrency=args.concurrency, env={**env, **server.env()})
            openai["system"] = "agentos_openai_loopback"
            runs.append(openai)
    finally:
        bench_env.close()
    headline = next((r for r in runs if r["system"] == "agentos" and r["tasks"] == 500), runs[0])
    result = {
        "benchmark": "throughput",
        "latency_ms": args.latency_ms,
        "headline": {k: headline.get(k) for k in ("tasks", "processes", "threads_per_process", "model_steps_per_s",
                                                  "ratio_to_langgraph", "lost", "peak_rss_mb")},
        "meets_target": bool(headline.get("ratio_to_langgraph") and headline["ratio_to_langgraph"] >= 2.0
                             and all(r["lost"] == 0 for r in runs)),
        "runs": runs,
        "machine": harness.machine(),
    }
    return harness.emit("throughput", result)


if __name__ == "__main__":
    main()
