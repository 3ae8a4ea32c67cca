"""Run every benchmark, then write and print a summary table (bench/results/summary.md).

    python -m bench.run_all            # full sizes (about 15-25 minutes on 2 cores)
    python -m bench.run_all --quick    # smaller sizes, a few minutes
    python -m bench.run_all --only steps,resume

Each benchmark runs as its own process (so each sets up Django on its own database) and
prints one JSON object; its output goes to bench/results/<name>.log and the JSON to
bench/results/<name>.json. A benchmark that fails is listed as failed; the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.harness import RESULTS, ROOT

Row = tuple[str, str, str, str]  # figure, value, target, met


@dataclass
class Bench:
    name: str
    command: list[str]
    quick: list[str] = field(default_factory=list)
    rows: Callable[[dict], list[Row]] | None = None
    timeout: float = 3600


def _met(ok: bool | None) -> str:
    return "" if ok is None else ("yes" if ok else "**no**")


def steps_rows(r: dict) -> list[Row]:
    a, lg, floor = r["agentos"], r["langgraph_postgres_sync"], r["floor_insert_commit"]
    return [
        (f"AgentOS ms/step, median / p95 / mean ({r['tasks']} tasks x {r['steps_per_task']} steps)",
         f"{a['median_ms']} / {a['p95_ms']} / {a['mean_ms']}", "", ""),
        ("LangGraph PostgresSaver (sync) ms/step, median / p95 / mean",
         f"{lg['median_ms']} / {lg['p95_ms']} / {lg['mean_ms']}", "", ""),
        ("ratio AgentOS / LangGraph (mean)", str(r["ratio_mean"]), "<= 0.6", _met(r["ratio_mean"] <= 0.6)),
        ("ratio AgentOS / LangGraph (p95)", str(r["ratio_p95"]), "<= 1.0", _met(r["ratio_p95"] <= 1.0)),
        ("floor: INSERT + COMMIT of a step-sized row, median ms", str(floor["median_ms"]), "", ""),
    ]


def throughput_rows(r: dict) -> list[Row]:
    rows = []
    for run in r["runs"]:
        figure = (f"{run.get('workers', 1)} worker(s) x {run['concurrency']} threads: model steps/s "
                  f"(ideal {run['ideal_model_steps_per_s']}), peak RSS MB")
        value = f"{run['model_steps_per_s']} ({run['fraction_of_ideal']:.0%}), {run['peak_rss_mb']}"
        rows.append((figure, value, ">= 90 %", _met(run["fraction_of_ideal"] >= 0.9)))
    return rows


def storage_rows(r: dict) -> list[Row]:
    a, lg = r["agentos"], r["langgraph_postgres"]
    return [
        ("AgentOS bytes/step at 10 / 100 / 1000 steps", " / ".join(str(a[k]["bytes_per_step"]) for k in a),
         "constant", _met(r["constant_per_step"])),
        ("LangGraph bytes/step at 10 / 100 / 1000 steps", " / ".join(str(lg[k]["bytes_per_step"]) for k in lg), "", ""),
        ("ratio AgentOS / LangGraph at 1000 steps", str(r["ratio_at_1000"]), "", ""),
    ]


def resume_rows(r: dict) -> list[Row]:
    crash, resume = r["kill_to_next_step"], r["resume_to_next_worker_step"]
    return [
        (f"SIGKILL -> next step on another worker, median / max ms (lease {r['lease_seconds']} s, "
         f"requeue every {r['requeue_interval_s']} s)", f"{crash['median_ms']} / {crash['max_ms']}", "< 5000",
         _met(crash["max_ms"] is not None and crash["max_ms"] < 5000)),
        ("resume -> next step committed by a worker, median ms", str(resume["median_ms"]), "< 10",
         _met(resume["median_ms"] < 10)),
        ("resume service call (resume step committed), median ms", str(r["resume_service_call"]["median_ms"]), "", ""),
    ]


def chaos_rows(r: dict) -> list[Row]:
    rows = [(f"chaos: {r['runs']} tasks, kills {r['kills']}", f"lost {r['lost']}, duplicated {r['duplicated']}, "
             f"not completed {r['runs'] - r['completed']}, websocket missed {r['websocket_missed']}",
             "0 / 0 / 0 / 0", _met(r["ok"]))]
    if r.get("load"):
        load = r["load"]
        rows.append((f"load: {load['tasks']} tasks created concurrently over the API",
                     f"5xx {load['server_errors']}, statuses {load['task_statuses']}, {load['seconds']} s",
                     "no 5xx, all completed", _met(load["ok"])))
    return rows


def generic_rows(r: dict) -> list[Row]:
    """Scalars of a benchmark whose shape this table does not know, one level deep."""
    rows = []
    for key, value in r.items():
        if isinstance(value, (int, float, str)) and key != "benchmark":
            rows.append((key, str(value), "", ""))
        elif isinstance(value, dict):
            inner = ", ".join(f"{k} {v}" for k, v in value.items() if isinstance(v, (int, float, str)))
            if inner:
                rows.append((key, inner[:200], "", ""))
    return rows[:12]


def benches() -> list[Bench]:
    found = [
        Bench("steps", ["-m", "bench.steps"], ["--tasks", "10"], steps_rows),
        Bench("throughput", ["-m", "bench.throughput", "--concurrency", "32", "128"],
              ["--tasks", "100"], throughput_rows),
        Bench("storage", ["-m", "bench.storage"], ["--total", "1000", "--langgraph-total", "1000"], storage_rows),
        Bench("resume", ["-m", "bench.resume"], ["--rounds", "3"], resume_rows),
        Bench("chaos", ["-m", "bench.chaos"], ["--tasks", "20", "--load", "50"], chaos_rows),
    ]
    # Benchmarks of other parts of the system, run when they exist.
    if (ROOT / "bench" / "realtime_latency.py").exists():
        found.append(Bench("realtime_latency", ["bench/realtime_latency.py"], [], generic_rows))
    if (ROOT / "bench" / "memory_search.py").exists():
        found.append(Bench("memory_search", ["bench/memory_search.py"], ["--n", "10000"], generic_rows))
    return found


def last_json(text: str) -> dict:
    """The benchmark's JSON object: the whole output, or the last object starting a line."""
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    starts = [i for i, line in enumerate(text.splitlines()) if line.startswith("{")]
    lines = text.splitlines()
    for start in reversed(starts):
        try:
            return json.loads("\n".join(lines[start:]))
        except ValueError:
            continue
    raise ValueError("no JSON object in the output")


def run(bench: Bench, quick: bool) -> tuple[dict | None, str, float]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / f"{bench.name}.log"
    command = [sys.executable, *bench.command, *(bench.quick if quick else [])]
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=bench.timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {bench.timeout:.0f} s", time.monotonic() - started
    log.write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"failed (exit {done.returncode}): {tail[:200]}", elapsed
    try:
        result = last_json(done.stdout)
    except ValueError as error:
        return None, str(error), elapsed
    (RESULTS / f"{bench.name}.json").write_text(json.dumps(result) + "\n")
    return result, "", elapsed


def table(outcomes: list[tuple[Bench, dict | None, str, float]], quick: bool) -> str:
    load = os.getloadavg()
    lines = [f"# Benchmark summary ({'quick' if quick else 'full'} run, {time.strftime('%Y-%m-%d %H:%M')}, "
             f"{os.cpu_count()} CPUs, load average {load[0]:.1f})", "",
             "| benchmark | figure | value | target | met |", "|---|---|---|---|---|"]
    for bench, result, error, elapsed in outcomes:
        if result is None:
            lines.append(f"| {bench.name} | {error} | | | **no** |")
            continue
        try:
            rows = (bench.rows or generic_rows)(result)
        except (KeyError, TypeError, ZeroDivisionError) as problem:
            rows = [("(unexpected JSON shape)", repr(problem)[:100], "", "")]
        for figure, value, target, met in rows:
            lines.append(f"| {bench.name} | {figure} | {value} | {target} | {met} |")
        lines.append(f"| {bench.name} | run time | {elapsed:.0f} s | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    args = parser.parse_args(argv)
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    outcomes = []
    for bench in benches():
        if wanted and bench.name not in wanted:
            continue
        print(f"running {bench.name} ...", file=sys.stderr, flush=True)
        outcomes.append((bench, *run(bench, args.quick)))
    summary = table(outcomes, args.quick)
    (RESULTS / "summary.md").write_text(summary)
    print(summary)
    return 0 if all(result is not None for _, result, _, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
