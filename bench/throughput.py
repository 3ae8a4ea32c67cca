"""Throughput of I/O-bound agents: 500 concurrent tasks, a simulated 1 s model latency.

    python -m bench.throughput [--tasks 500] [--latency-ms 1000] [--concurrency 32 128 ...]

One Celery worker as the README starts it (pool ``threads``; concurrency from
CELERY_WORKER_CONCURRENCY unless --concurrency lists values to compare; --workers 2 runs
two such processes) serves `--tasks` tasks created at once. A model step holds a worker
thread for the latency, so the ideal is concurrency / latency model steps per second.
Measured: model steps committed per second while every thread has work (between 10 % and
90 % of all model steps), all steps per second, and the workers' peak resident memory
(psutil, sampled every 0.2 s).

Target: >= 90 % of the ideal on this 2-core machine.
"""

from __future__ import annotations

import argparse
import threading
import time

from bench import harness

DB_NAME = "agentos_bench_throughput"
MODEL_KINDS = ("plan", "llm", "summary", "synthesis")


class RSSSampler(threading.Thread):
    """Peak of the summed resident memory of the worker processes."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids, self.peak, self.stopping = pids, 0, threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.2):
            self.peak = max(self.peak, sum(harness.rss_tree(pid) for pid in self.pids))


def wait_finished(task_ids: list[str], timeout: float) -> int:
    from tasks.models import Task

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        active = Task.objects.filter(pk__in=task_ids, status__in=("queued", "running")).count()
        if active == 0:
            return 0
        time.sleep(1)
    return active


def rates(task_ids: list[str], latency_s: float, concurrency: int) -> dict:
    from django.db.models import Count

    from tasks.models import Step, Task

    steps = Step.objects.filter(task_id__in=task_ids)
    model_times = sorted(t.timestamp() for t in steps.filter(kind__in=MODEL_KINDS).values_list("created_at", flat=True))
    all_times = sorted(t.timestamp() for t in steps.values_list("created_at", flat=True))
    low, high = int(len(model_times) * 0.1), int(len(model_times) * 0.9)
    window = model_times[high] - model_times[low]
    model_rate = (high - low) / window if window > 0 else 0.0
    span = all_times[-1] - all_times[0] if len(all_times) > 1 else 0.0
    ideal = concurrency / latency_s
    statuses = dict(Task.objects.filter(pk__in=task_ids).values_list("status").annotate(n=Count("id")))
    return {
        "model_steps": len(model_times),
        "steps": len(all_times),
        "model_steps_per_s": round(model_rate, 2),
        "steps_per_s_whole_run": round(len(all_times) / span, 2) if span else 0.0,
        "ideal_model_steps_per_s": round(ideal, 2),
        "fraction_of_ideal": round(model_rate / ideal, 3),
        "statuses": statuses,
    }


def measure(*, concurrency: int, tasks: int, latency_ms: int, query: str, timeout: float, workers: int = 1) -> dict:
    from bench import processes
    from bench.agentos_driver import create_tasks

    user, _ = harness.bench_user()
    started_workers = [processes.worker(harness.child_env(), concurrency=concurrency, name=f"worker{i}").start()
                       for i in range(workers)]
    sampler = RSSSampler([w.process.pid for w in started_workers])
    sampler.start()
    try:
        started = time.monotonic()
        task_ids = create_tasks(owner=user, query=query, count=tasks)
        unfinished = wait_finished(task_ids, timeout)
        elapsed = time.monotonic() - started
    finally:
        sampler.stopping.set()
        sampler.join()
        for worker in started_workers:
            worker.stop()
    return {"workers": workers, "concurrency": concurrency, "pool": "threads", "tasks": tasks,
            "unfinished": unfinished, "seconds": round(elapsed, 1), "peak_rss_mb": round(sampler.peak / 2**20, 1),
            **rates(task_ids, latency_ms / 1000, concurrency * workers)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--latency-ms", type=int, default=1000)
    parser.add_argument("--clauses", type=int, default=1, help="subtasks per task")
    parser.add_argument("--concurrency", type=int, nargs="*", help="default: CELERY_WORKER_CONCURRENCY")
    parser.add_argument("--workers", type=int, nargs="*", default=[1], help="worker processes (one run per value)")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args(argv)

    env = harness.django_environment(DB_NAME, OFFLINE_LLM_LATENCY_MS=str(args.latency_ms))
    try:
        from django.conf import settings

        from bench.steps import query_with

        levels = args.concurrency or [settings.CELERY_WORKER_CONCURRENCY]
        runs = [measure(concurrency=c, tasks=args.tasks, latency_ms=args.latency_ms, query=query_with(args.clauses),
                        timeout=args.timeout, workers=n) for n in args.workers for c in levels]
        default = settings.CELERY_WORKER_CONCURRENCY
    finally:
        env.close()
    headline = next((r for r in runs if r["concurrency"] == default and r["workers"] == 1), runs[0])
    result = {
        "benchmark": "throughput",
        "latency_ms": args.latency_ms,
        "default_concurrency": default,
        "fraction_of_ideal": headline["fraction_of_ideal"],
        "model_steps_per_s": headline["model_steps_per_s"],
        "peak_rss_mb": headline["peak_rss_mb"],
        "meets_target": headline["fraction_of_ideal"] >= 0.9 and headline["unfinished"] == 0,
        "runs": runs,
        "machine": harness.machine(),
    }
    return harness.emit("throughput", result)


if __name__ == "__main__":
    main()
