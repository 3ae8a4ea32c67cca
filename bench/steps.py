"""Per-step orchestration overhead: AgentOS vs LangGraph + PostgresSaver, and the floor.

    python -m bench.steps [--tasks 30] [--clauses 3]

1. AgentOS: N tasks through the real runner (tasks.runner.run_slice) with the offline
   provider at zero latency; each step is committed with its lease renewal in one
   transaction and published to the channel layer. Per-step time = time between two
   committed steps minus the provider's own time (LLM time excluded).
2. LangGraph: the same sequence of model / tool / plain steps (taken from the AgentOS
   run) in a StateGraph with a fake model, a ToolNode and PostgresSaver, durability="sync",
   on the same PostgreSQL server (database agentos_bench).
3. Floor: one INSERT + COMMIT of a row the size of an AgentOS step, on the same server.

Prints one JSON object; ratio = AgentOS median / LangGraph median (target <= 0.5).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

from bench import harness

DB_NAME = "agentos_bench"


def query_with(clauses: int) -> str:
    """A request the offline planner splits into `clauses` arithmetic subtasks (calculator calls)."""
    parts = [f"compute {12 + i} * {7 + i}" for i in range(clauses)]
    return "Please " + ", then ".join(parts) + "."


def run_agentos(*, tasks: int, query: str, warmup: int = 2) -> dict:
    from bench.agentos_driver import LLMClock, create_tasks, per_step_seconds, run_to_end, step_rows

    user, _token = harness.bench_user()
    clock = LLMClock()
    clock.install()
    for task_id in create_tasks(owner=user, query=query, count=warmup):
        run_to_end(task_id)
    task_ids = create_tasks(owner=user, query=query, count=tasks)
    started: dict[str, float] = {}
    wall_started = time.time()
    for task_id in task_ids:
        started[task_id] = time.time()
        run_to_end(task_id)
    wall = time.time() - wall_started
    rows = step_rows(task_ids)
    llm_seconds = clock.within(wall_started, wall_started + wall)
    steps = sum(len(r) for r in rows.values())
    kinds = [row["kind"] for row in rows[task_ids[0]]]
    return {
        "step_seconds": per_step_seconds(started=started, rows=rows, clock=clock),
        "steps": steps,
        "kinds": kinds,
        "mean_ms_wall": round((wall - llm_seconds) / steps * 1000, 3),
        "llm_ms_per_step": round(llm_seconds / steps * 1000, 3),
        "task_ids": task_ids,
    }


def step_row_bytes(task_ids: list[str]) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT avg(pg_column_size(s.*))::int FROM tasks_step s WHERE task_id = ANY(%s::uuid[])",
                       [task_ids])
        return cursor.fetchone()[0] or 0


def run_floor(*, url: str, row_bytes: int, count: int = 500) -> list[float]:
    """One INSERT + COMMIT per row of `row_bytes`, on a table shaped like the step table."""
    import psycopg

    payload = json.dumps({"text": "x" * max(0, row_bytes - 120)})
    seconds: list[float] = []
    with psycopg.connect(harness.psycopg_url(url), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_floor")
        conn.execute("CREATE TABLE bench_floor (id bigserial PRIMARY KEY, task uuid NOT NULL, index int NOT NULL, "
                     "kind varchar(16) NOT NULL, input jsonb, created_at timestamptz NOT NULL DEFAULT now(), "
                     "UNIQUE (task, index))")
        task = uuid.uuid4()
        for index in range(count + 20):
            started = time.perf_counter()
            with conn.transaction():
                conn.execute("INSERT INTO bench_floor (task, index, kind, input) VALUES (%s, %s, 'llm', %s)",
                             [task, index, payload])
            if index >= 20:
                seconds.append(time.perf_counter() - started)
        conn.execute("DROP TABLE bench_floor")
    return seconds


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=30, help="tasks per system (N)")
    parser.add_argument("--clauses", type=int, default=3, help="subtasks per task (sets M, the steps per task)")
    args = parser.parse_args(argv)

    env = harness.django_environment(DB_NAME, OFFLINE_LLM_LATENCY_MS="0")
    try:
        from bench.langgraph_agent import run_langgraph, script_from_kinds

        agentos = run_agentos(tasks=args.tasks, query=query_with(args.clauses))
        script = script_from_kinds(agentos["kinds"])
        peer = run_langgraph(url=harness.psycopg_url(env.db_url), tasks=args.tasks, script=script)
        row_bytes = step_row_bytes(agentos["task_ids"])
        floor = run_floor(url=env.db_url, row_bytes=row_bytes)
    finally:
        env.close()

    ours, theirs = harness.summary_ms(agentos["step_seconds"]), harness.summary_ms(peer.step_seconds)
    result = {
        "benchmark": "steps",
        "tasks": args.tasks,
        "steps_per_task": len(agentos["kinds"]),
        "step_kinds": agentos["kinds"],
        "agentos": {**ours, "mean_ms_wall": agentos["mean_ms_wall"], "llm_ms_per_step_excluded":
                    agentos["llm_ms_per_step"], "steps": agentos["steps"]},
        "langgraph_postgres_sync": {**theirs, "mean_ms_wall": round(peer.wall_seconds / peer.steps * 1000, 3),
                                    "steps": peer.steps},
        "floor_insert_commit": {**harness.summary_ms(floor), "row_bytes": row_bytes},
        "ratio_median": round(ours["median_ms"] / theirs["median_ms"], 3),
        "ratio_p95": round(ours["p95_ms"] / theirs["p95_ms"], 3),
        "ratio_mean": round(agentos["mean_ms_wall"] / (peer.wall_seconds / peer.steps * 1000), 3),
        "target_ratio": 0.5,
        "machine": harness.machine(),
    }
    result["meets_target"] = result["ratio_median"] <= 0.5
    return harness.emit("steps", result)


if __name__ == "__main__":
    main()
