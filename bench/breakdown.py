"""Where a step's time goes in the runner: phases and SQL statements, per committed step.

    python -m bench.breakdown [--tasks 10] [--clauses 3]

Runs the steps benchmark's workload in this process with timers wrapped around the
runner's phases (lease, load, decide, execute, prompt render, tool dispatch, the store's
append, the publish) and every SQL statement timed by a Django execute wrapper, grouped by
statement. The wrappers add a few microseconds per call.
Prints one JSON object: milliseconds per committed step for each phase and statement.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import time
from collections import defaultdict

from bench import harness

# (module, attribute path, label): wrapped where the runner looks them up.
PHASES = [
    ("tasks.runner", "lease_acquire", "lease acquire"),
    ("tasks.runner", "load_state", "load state"),
    ("tasks.runner", "decide", "decide (pure engine)"),
    ("tasks.runner", "execute", "execute action (all)"),
    ("tasks.execution", "prompt_render", "  prompt render (active version + render + tokens)"),
    ("tasks.execution", "build_messages", "  build messages"),
    ("tasks.execution", "dispatch", "  tool dispatch"),
    ("tasks.execution", "_memory_hits", "  memory pre-fetch (plan step)"),
    ("memory.services", "_search", "    memory search statement(s)"),
    ("tasks.execution", "task_result_remember", "result to memory (after the result step's commit)"),
    ("tasks.runner", "task_changes", "task changes (progress, estimates)"),
    ("tasks.runner", "step_append", "store: append (statement + commit)"),
    ("tasks.store", "live.step_event", "  live event built"),
    ("tasks.store", "live.publish", "  live event queued"),
    ("tasks.runner", "lease_release", "lease release"),
]


class Timers:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.llm = 0.0

    def wrap(self, module_name: str, path: str, label: str) -> None:
        owner = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        original = getattr(owner, name, None)
        if original is None:
            return

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started
                self.calls[label] += 1

        setattr(owner, name, timed)

    def sql(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            key = " ".join(sql.split())[:90]
            self.seconds["SQL: " + key] += time.perf_counter() - started
            self.calls["SQL: " + key] += 1


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--clauses", type=int, default=3)
    args = parser.parse_args(argv)

    env = harness.django_environment("agentos_bench_breakdown", OFFLINE_LLM_LATENCY_MS="0")
    try:
        from django.db import connection

        from bench.agentos_driver import LLMClock, create_tasks, run_to_end
        from bench.steps import query_with
        from tasks.models import Step

        user, _ = harness.bench_user()
        clock = LLMClock()
        clock.install()
        query = query_with(args.clauses)
        for task_id in create_tasks(owner=user, query=query, count=2):
            run_to_end(task_id)
        timers = Timers()
        for module_name, path, label in PHASES:
            timers.wrap(module_name, path, label)
        task_ids = create_tasks(owner=user, query=query, count=args.tasks)
        started = time.perf_counter()
        calls_before = len(clock.calls)
        with connection.execute_wrapper(timers.sql):
            for task_id in task_ids:
                run_to_end(task_id)
        wall = time.perf_counter() - started
        llm = sum(e - s for s, e in clock.calls[calls_before:])
        steps = Step.objects.filter(task_id__in=task_ids).count()
    finally:
        with contextlib.suppress(Exception):
            env.close()
    per_step = {label: {"ms": round(seconds / steps * 1000, 3), "calls_per_step": round(timers.calls[label] / steps, 2)}
                for label, seconds in sorted(timers.seconds.items(), key=lambda kv: -kv[1])}
    result = {
        "benchmark": "breakdown",
        "steps": steps,
        "wall_ms_per_step": round(wall / steps * 1000, 3),
        "llm_ms_per_step": round(llm / steps * 1000, 3),
        "sql_ms_per_step": round(sum(v for k, v in timers.seconds.items() if k.startswith("SQL")) / steps * 1000, 3),
        "phases": {k: v for k, v in per_step.items() if not k.startswith("SQL")},
        "sql": {k[5:]: v for k, v in per_step.items() if k.startswith("SQL")},
    }
    return harness.emit("breakdown", result)


if __name__ == "__main__":
    main()
