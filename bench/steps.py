"""Per-step orchestration overhead: AgentOS vs LangGraph + PostgresSaver, and the floor.

    python -m bench.steps [--tasks 30] [--clauses 3]

1. AgentOS: N tasks through the real runner (tasks.runner.run_slice) with the offline
   provider at zero latency; each step is committed with its lease renewal in one
   transaction and published to the channel layer. Per-step time = time between two
   committed steps (their created_at) minus the provider's own time (LLM time excluded).
   The store stamps a step right before its statement, which is sent after the previous
   step's commit returned, so one interval holds one whole step (decide, execute, store,
   publish). The trigger step (index 0) is not counted: the
   service writes it when the task is created, before the runner starts. mean_ms_wall is
   the run's wall time (first lease to the last reply) per step, LLM time excluded.
2. LangGraph: the same sequence of model / tool / plain steps (taken from the AgentOS
   run) in a StateGraph with a fake model, a ToolNode and PostgresSaver, durability="sync",
   on the same PostgreSQL server and database (agentos_bench_steps).
3. Floor: one INSERT + COMMIT of a row the size of an AgentOS step, on the same server.

Prints one JSON object with the median, p95 and mean per step of both; targets: mean <= 0.6 x
and p95 <= 1.0 x LangGraph's, and no step kind (plan and result included) as the tail. Also
the CPU time per step of this process for each (``cpu_ms_per_step``; the PostgreSQL
server's own work is not in it), which moves far less with the machine's load.

    python -m bench.steps --observability [--tasks 30]

The cost of observability, same run, tasks interleaved across three arms (AgentOS only,
written to bench/results/steps_observability.json):
- ``none``: the runtime's observability hooks replaced by bare pass-throughs (as if absent);
- ``off``: the shipped default without an OTLP endpoint and with METRICS_ENABLED off;
- ``on``: tracing (SDK, batch processor, OTLP/HTTP to a receiver process on loopback that
  accepts and discards) and metrics (Redis) on; the log context is set in every arm but ``none``.
Targets: ``on`` mean per step <= 1.10 x ``none``; ``off`` within noise of ``none``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid

from bench import harness

DB_NAME = "agentos_bench_steps"


def query_with(clauses: int) -> str:
    """A request the offline planner splits into `clauses` arithmetic subtasks (calculator calls)."""
    parts = [f"compute {12 + i} * {7 + i}" for i in range(clauses)]
    return "Please " + ", then ".join(parts) + "."


class AgentOSSession:
    """Tasks of one query run in this thread through the runner; per-step times, LLM time removed."""

    def __init__(self, query: str) -> None:
        from bench.agentos_driver import LLMClock

        self.query = query
        self.user, _token = harness.bench_user()
        self.clock = LLMClock()
        self.clock.install()
        self.task_ids: list[str] = []
        self.by_kind: dict[str, list[float]] = {}
        self.cpu_seconds = 0.0  # this process's CPU time in the runner (all threads), LLM time removed

    def run_one(self, *, keep: bool = True) -> tuple[list[float], float, list[str]]:
        """(per-step seconds, wall seconds minus LLM time, step kinds) of one task."""
        from bench.agentos_driver import create_tasks, per_step_seconds, run_to_end, step_rows

        (task_id,) = create_tasks(owner=self.user, query=self.query, count=1)
        started, cpu_started = time.time(), time.process_time()
        run_to_end(task_id)
        ended, cpu = time.time(), time.process_time() - cpu_started
        rows = step_rows([task_id])
        if keep:
            self.task_ids.append(task_id)
            # The offline provider at zero latency computes (token counts): its time is CPU time.
            self.cpu_seconds += cpu - self.clock.within(started, ended)
        steps = per_step_seconds(started={task_id: started}, rows=rows, clock=self.clock)
        if keep:
            for row, seconds in zip(rows[task_id], steps, strict=True):
                self.by_kind.setdefault(row["kind"], []).append(seconds)
        return steps, (ended - started) - self.clock.within(started, ended), [r["kind"] for r in rows[task_id]]


def run_interleaved(*, tasks: int, query: str, url: str, warmup: int = 2) -> dict:
    """AgentOS and LangGraph tasks alternate, so both see the same machine load over time."""
    from bench.langgraph_agent import LangGraphSession, script_from_kinds

    agentos = AgentOSSession(query)
    kinds: list[str] = []
    for _ in range(warmup):
        _steps, _wall, kinds = agentos.run_one(keep=False)
    peer = LangGraphSession(url, script_from_kinds(kinds))
    try:
        for _ in range(warmup):
            peer.run_one()
        ours, theirs = {"steps": [], "wall": 0.0}, {"steps": [], "wall": 0.0, "cpu": 0.0}
        for _ in range(tasks):
            steps, wall, run_kinds = agentos.run_one()
            if run_kinds != kinds:
                raise RuntimeError(f"AgentOS runs differ: {run_kinds} vs {kinds}")
            ours["steps"] += steps
            ours["wall"] += wall
            cpu_started = time.process_time()
            steps, wall = peer.run_one()
            theirs["cpu"] += time.process_time() - cpu_started
            theirs["steps"] += steps
            theirs["wall"] += wall
    finally:
        peer.close()
    ours["cpu"] = agentos.cpu_seconds
    return {"agentos": ours, "langgraph": theirs, "kinds": kinds, "task_ids": agentos.task_ids,
            "agentos_by_kind": agentos.by_kind,
            "llm_seconds": sum(e - s for s, e in agentos.clock.calls)}


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


class ObservabilityArms:
    """Switches this process between the three arms (see the module docstring)."""

    # A separate process, as a collector would be: accepts OTLP/HTTP exports and discards them.
    RECEIVER = (
        "import sys\n"
        "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer\n"
        "class Discard(BaseHTTPRequestHandler):\n"
        "    def do_POST(self):\n"
        "        self.rfile.read(int(self.headers.get('Content-Length') or 0))\n"
        "        self.send_response(200); self.send_header('Content-Length', '0'); self.end_headers()\n"
        "    def log_message(self, *args): pass\n"
        "server = ThreadingHTTPServer(('127.0.0.1', 0), Discard)\n"
        "print(server.server_port, flush=True)\n"
        "server.serve_forever()\n")

    def __init__(self) -> None:
        import subprocess
        import sys

        self.receiver = subprocess.Popen([sys.executable, "-c", self.RECEIVER], stdout=subprocess.PIPE, text=True)
        port = int(self.receiver.stdout.readline())
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.provider = TracerProvider()
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
            endpoint=f"http://127.0.0.1:{port}/v1/traces")))
        import observability.hooks as hooks
        import tasks.execution

        self.real = {name: getattr(hooks, name) for name in hooks.__all__}
        self.real_model_call = tasks.execution.model_call

    def use(self, arm: str) -> None:
        from contextlib import nullcontext

        from django.conf import settings

        import observability.hooks as hooks
        import tasks.execution
        from observability import tracing

        bare = {"slice_scope": lambda *_: nullcontext(), "budget_action": lambda _task, action: action,
                "traced_execute": lambda execute, run, action: execute(run, action),
                "model_call": lambda provider, request, _draft: provider.complete(request),
                "before_store": lambda *_: None, "after_store": lambda *_: None}
        functions = bare if arm == "none" else self.real
        for name in hooks.__all__:
            setattr(hooks, name, functions[name])
        tasks.execution.model_call = bare["model_call"] if arm == "none" else self.real_model_call
        tracing.install(self.provider if arm == "on" else None)
        settings.METRICS_ENABLED = arm == "on"

    def close(self) -> None:
        from observability import metrics

        self.use("off")
        metrics.flush()  # before the benchmark's Redis stops
        self.provider.shutdown()
        self.receiver.kill()
        self.receiver.wait()


def run_observability(*, tasks: int, query: str, warmup: int = 2) -> dict:
    """Tasks of the three arms in turn, so all see the same machine load over time."""
    session = AgentOSSession(query)
    arms = ObservabilityArms()
    order = ("none", "off", "on")
    per_arm: dict[str, dict] = {arm: {"steps": [], "wall": 0.0} for arm in order}
    try:
        for arm in order:
            arms.use(arm)
            for _ in range(warmup):
                session.run_one(keep=False)
        for _ in range(tasks):
            for arm in order:
                arms.use(arm)
                steps, wall, _kinds = session.run_one(keep=False)
                per_arm[arm]["steps"] += steps
                per_arm[arm]["wall"] += wall
    finally:
        arms.close()
    result = {}
    for arm in order:
        figures = harness.summary_ms(per_arm[arm]["steps"])
        result[arm] = {**figures, "mean_ms_wall": round(per_arm[arm]["wall"] / len(per_arm[arm]["steps"]) * 1000, 3)}
    for arm in ("off", "on"):
        result[f"ratio_mean_{arm}"] = round(result[arm]["mean_ms"] / result["none"]["mean_ms"], 3)
        result[f"ratio_median_{arm}"] = round(result[arm]["median_ms"] / result["none"]["median_ms"], 3)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=30, help="tasks per system (N)")
    parser.add_argument("--clauses", type=int, default=3, help="subtasks per task (sets M, the steps per task)")
    parser.add_argument("--observability", action="store_true",
                        help="compare tracing + metrics on / off / absent instead of LangGraph")
    args = parser.parse_args(argv)
    if args.observability:
        return main_observability(args)

    env = harness.django_environment(DB_NAME, OFFLINE_LLM_LATENCY_MS="0")
    load_before = os.getloadavg()[0]
    try:
        run = run_interleaved(tasks=args.tasks, query=query_with(args.clauses), url=harness.psycopg_url(env.db_url))
        row_bytes = step_row_bytes(run["task_ids"])
        floor = run_floor(url=env.db_url, row_bytes=row_bytes)
    finally:
        env.close()

    ours, theirs = run["agentos"], run["langgraph"]
    ours_ms, theirs_ms = harness.summary_ms(ours["steps"]), harness.summary_ms(theirs["steps"])
    ours_mean = ours["wall"] / len(ours["steps"]) * 1000
    theirs_mean = theirs["wall"] / len(theirs["steps"]) * 1000
    ours_cpu, theirs_cpu = ours["cpu"] / len(ours["steps"]), theirs["cpu"] / len(theirs["steps"])
    result = {
        "benchmark": "steps",
        "tasks": args.tasks,
        "steps_per_task": len(run["kinds"]),
        "step_kinds": run["kinds"],
        "agentos": {**ours_ms, "mean_ms_wall": round(ours_mean, 3)},
        "langgraph_postgres_sync": {**theirs_ms, "mean_ms_wall": round(theirs_mean, 3)},
        "floor_insert_commit": {**harness.summary_ms(floor), "row_bytes": row_bytes},
        "ratio_median": round(ours_ms["median_ms"] / theirs_ms["median_ms"], 3),
        "ratio_p95": round(ours_ms["p95_ms"] / theirs_ms["p95_ms"], 3),
        "ratio_mean": round(ours_ms["mean_ms"] / theirs_ms["mean_ms"], 3),
        "ratio_mean_wall": round(ours_mean / theirs_mean, 3),
        # CPU time of this process per step (all its threads; AgentOS without the offline
        # provider's own time): far less sensitive to the machine's load than the intervals.
        "cpu_ms_per_step": {"agentos": round(ours_cpu * 1000, 3), "langgraph": round(theirs_cpu * 1000, 3),
                            "ratio": round(ours_cpu / theirs_cpu, 3)},
        # Where AgentOS's time goes: median, p95 and mean per step kind (in task order of first use).
        "agentos_by_kind": {kind: harness.summary_ms(values) for kind, values in run["agentos_by_kind"].items()},
        "target_ratio_mean": 0.6,
        "target_ratio_p95": 1.0,
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "machine": harness.machine(),
    }
    result["meets_target"] = result["ratio_mean"] <= 0.6 and result["ratio_p95"] <= 1.0
    return harness.emit("steps", result)


def main_observability(args) -> dict:
    env = harness.django_environment(DB_NAME, OFFLINE_LLM_LATENCY_MS="0")
    load_before = os.getloadavg()[0]
    try:
        arms = run_observability(tasks=args.tasks, query=query_with(args.clauses))
    finally:
        env.close()
    result = {"benchmark": "steps_observability", "tasks_per_arm": args.tasks, **arms,
              "target_ratio_mean_on": 1.10,
              "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
              "machine": harness.machine()}
    result["meets_target"] = arms["ratio_mean_on"] <= 1.10
    return harness.emit("steps_observability", result)


if __name__ == "__main__":
    main()
