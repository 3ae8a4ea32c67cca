"""Bytes per step in PostgreSQL for runs of 10, 100 and 1,000 steps; AgentOS vs LangGraph.

    python -m bench.storage [--total 2000]

AgentOS: a real task runs through the runner (offline provider); its step rows are the
template. The engine caps a run at a few dozen steps (at most 10 subtasks, 3-10 steps
each), so runs of L steps are built by appending copies of the real rows (every column
as the runner wrote it) with consecutive indexes, as many runs as make `--total` steps.
Bytes = growth of pg_total_relation_size (heap + TOAST + every index) of the step table,
divided by the steps written; also with the task table (one row per run) and the rows'
own size (pg_column_size).

LangGraph: the same number of steps as runs of L steps of the steps benchmark's agent
loop with PostgresSaver; bytes = growth of its checkpoint tables.

Target: constant bytes per step (no growth with run length).
"""

from __future__ import annotations

import argparse
import time

from bench import harness

DB_NAME = "agentos_bench_storage"
LENGTHS = (10, 100, 1000)
LANGGRAPH_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")


def relation_bytes(tables: tuple[str, ...], *, url: str | None = None) -> int:
    """Total on-disk size of the tables: heap, TOAST and every index."""
    sql = "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c WHERE c.relname = ANY(%s)"
    if url is None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(sql, [list(tables)])
            return int(cursor.fetchone()[0] or 0)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return int(conn.execute(sql, [list(tables)]).fetchone()[0] or 0)


def template_steps(query: str) -> list:
    from bench.agentos_driver import create_tasks, run_to_end
    from tasks.models import Step

    user, _ = harness.bench_user()
    (task_id,) = create_tasks(owner=user, query=query, count=1)
    run_to_end(task_id)
    return list(Step.objects.filter(task_id=task_id).order_by("index"))


def agentos_runs(*, length: int, runs: int, template: list) -> dict:
    from django.db import connection, transaction

    from tasks.models import Step, Task

    user, _ = harness.bench_user()
    before, task_before = relation_bytes(("tasks_step",)), relation_bytes(("tasks_task",))
    skip = {"id", "task", "index"}
    names = [f.attname for f in Step._meta.concrete_fields if f.name not in skip]
    task_ids = []
    for _ in range(runs):
        with transaction.atomic():
            task = Task.objects.create(owner=user, query=template[0].task.query, status="completed")
            Step.objects.bulk_create(
                [Step(task=task, index=i, **{n: getattr(template[i % len(template)], n) for n in names})
                 for i in range(length)], batch_size=500)
            Task.objects.filter(pk=task.pk).update(step_count=length, total_steps=length)
        task_ids.append(task.pk)
    after, task_after = relation_bytes(("tasks_step",)), relation_bytes(("tasks_task",))
    with connection.cursor() as cursor:
        cursor.execute("SELECT avg(pg_column_size(s.*)) FROM tasks_step s WHERE task_id = ANY(%s)", [task_ids])
        row_bytes = float(cursor.fetchone()[0] or 0)
    steps = length * runs
    return {"steps": steps, "bytes_per_step": round((after - before) / steps, 1),
            "row_bytes_per_step": round(row_bytes, 1),
            "with_task_row_bytes_per_step": round((after - before + task_after - task_before) / steps, 1)}


def langgraph_runs(*, url: str, length: int, runs: int) -> dict:
    from bench.langgraph_agent import MODEL, TOOL, run_langgraph

    script = [MODEL if i % 2 == 0 else TOOL for i in range(length - 1)] + [MODEL]
    before = relation_bytes(LANGGRAPH_TABLES, url=url)
    started = time.perf_counter()
    result = run_langgraph(url=url, tasks=runs, script=script, warmup=0)
    after = relation_bytes(LANGGRAPH_TABLES, url=url)
    return {"steps": result.steps, "bytes_per_step": round((after - before) / result.steps, 1),
            "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--total", type=int, default=2000, help="steps written per run length")
    parser.add_argument("--langgraph-total", type=int, default=1000, help="LangGraph steps per run length")
    args = parser.parse_args(argv)

    env = harness.django_environment(DB_NAME, OFFLINE_LLM_LATENCY_MS="0")
    try:
        from bench.steps import query_with

        template = template_steps(query_with(3))
        lg_url = harness.psycopg_url(env.db_url)
        agentos, langgraph = {}, {}
        for length in LENGTHS:
            agentos[str(length)] = agentos_runs(length=length, runs=max(1, args.total // length), template=template)
        for length in LENGTHS:
            langgraph[str(length)] = langgraph_runs(url=lg_url, length=length,
                                                    runs=max(1, args.langgraph_total // length))
    finally:
        env.close()
    ours = [agentos[str(n)]["bytes_per_step"] for n in LENGTHS]
    theirs = [langgraph[str(n)]["bytes_per_step"] for n in LENGTHS]
    result = {
        "benchmark": "storage",
        "template_steps": len(template),
        "agentos": agentos,
        "langgraph_postgres": langgraph,
        "agentos_growth_1000_vs_10": round(ours[-1] / ours[0], 3),
        "langgraph_growth_1000_vs_10": round(theirs[-1] / theirs[0], 3),
        "ratio_at_1000": round(ours[-1] / theirs[-1], 4),
        # Constant: the longest runs cost no more per step than the shortest (within 10 %).
        "constant_per_step": ours[-1] <= 1.1 * ours[0] and max(ours) <= 1.25 * min(ours),
    }
    return harness.emit("storage", result)


if __name__ == "__main__":
    main()
