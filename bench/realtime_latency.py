"""Latency of live updates: from a step's commit to its arrival at a websocket and an SSE client.

    python -m bench.realtime_latency [--steps 1200] [--interval-ms 10]

A live daphne serves the websocket (ws/tasks/<id>/) and the SSE stream
(/api/v1/tasks/<id>/stream). One writer thread commits synthetic steps the way the runner
does: the Step row and the task's counters in one transaction, then, on commit,
tasks.live.publish to the channel layer. The commit time is taken by an on_commit hook
registered before the publish; each client takes its arrival time when a message for that
index is decoded. The clients run in a process of their own, so the writer's ORM work does
not hold the interpreter lock they need. All clocks are this machine's wall clock.

Prints one JSON object (median and p95 per client, in ms); target p95 < 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import threading
import time

from bench import harness

DB_NAME = "agentos_bench_realtime"


def commit_steps(task, count: int, interval: float, committed: dict[int, float], ready: threading.Event) -> None:
    from django.db import connection, transaction

    from tasks import live
    from tasks.models import Step, Task

    ready.wait()
    try:
        for index in range(count):
            started = time.monotonic()
            with transaction.atomic():
                step = Step.objects.create(task=task, index=index, kind="tool", agent="analysis", subtask_id="s1",
                                           input={"tool": "calculator", "arguments": {"expression": f"{index} * 2"}},
                                           output={"ok": True, "result": index * 2}, duration_ms=1)
                task.step_count = index + 1
                task.total_steps = count
                task.progress = round((index + 1) / count, 4)
                Task.objects.filter(pk=task.pk).update(step_count=task.step_count, total_steps=count,
                                                       progress=task.progress)
                event = live.step_event(task, step)
                # on_commit hooks run in order: the timestamp is taken right after COMMIT,
                # before the publish the runner would do.
                transaction.on_commit(lambda i=index: committed.__setitem__(i, time.time()))
                transaction.on_commit(lambda e=event: live.publish(task.pk, e))
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:
        connection.close()


async def websocket_client(url: str, origin: str, count: int, arrived: dict[int, float], ready: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, origin=origin, max_size=None) as ws:
        snapshot = json.loads(await ws.recv())
        assert snapshot["type"] == "snapshot"
        ready.set()
        while len(arrived) < count:
            message = json.loads(await ws.recv())
            if message["type"] == "step":
                arrived.setdefault(message["seq"], time.time())


async def sse_client(http, url: str, count: int, arrived: dict[int, float], ready: asyncio.Event) -> None:
    buffer = ""
    async with http.stream("GET", url) as response:
        assert response.status_code == 200, response.status_code
        async for chunk in response.aiter_text():
            now = time.time()
            buffer += chunk
            *blocks, buffer = buffer.split("\n\n")
            for block in blocks:
                if block.startswith("event: status"):
                    ready.set()
                for line in block.split("\n"):
                    if line.startswith("id: "):
                        arrived.setdefault(int(line[4:]), now)
            if len(arrived) >= count:
                return


async def follow(base: str, key: str, task_id: str, count: int, ready, timeout: float) -> tuple[dict, dict]:
    import httpx

    ws_arrived: dict[int, float] = {}
    sse_arrived: dict[int, float] = {}
    ws_ready, sse_ready = asyncio.Event(), asyncio.Event()
    ws_url = base.replace("http", "ws", 1) + f"/ws/tasks/{task_id}/?token={key}"
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Token {key}"}, timeout=60) as http:
        clients = [asyncio.ensure_future(websocket_client(ws_url, base, count, ws_arrived, ws_ready)),
                   asyncio.ensure_future(sse_client(http, f"/api/v1/tasks/{task_id}/stream", count, sse_arrived,
                                                    sse_ready))]
        await asyncio.wait_for(asyncio.gather(ws_ready.wait(), sse_ready.wait()), 30)
        ready.set()
        await asyncio.wait_for(asyncio.gather(*clients), timeout)
    return ws_arrived, sse_arrived


def clients_process(base: str, key: str, task_id: str, count: int, ready, results, timeout: float) -> None:
    """Entry point of the clients' process: follow the task, send back the arrival times."""
    results.put(asyncio.run(follow(base, key, task_id, count, ready, timeout)))


def latencies(committed: dict[int, float], arrived: dict[int, float]) -> list[float]:
    return [arrived[i] - committed[i] for i in sorted(committed) if i in arrived]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--interval-ms", type=float, default=10.0, help="pause between two commits")
    args = parser.parse_args()

    env = harness.django_environment(DB_NAME)
    from agentos.testing import start_daphne
    from tasks.models import Task

    server = start_daphne(env=harness.child_env())
    try:
        user, key = harness.bench_user()
        task = Task.objects.create(owner=user, query="latency benchmark", status="running")
        committed: dict[int, float] = {}
        context = multiprocessing.get_context("spawn")
        ready, results = context.Event(), context.Queue()
        timeout = 60 + args.steps * args.interval_ms / 1000 * 3
        clients = context.Process(target=clients_process, args=(server.extra["url"], key, str(task.pk), args.steps,
                                                                ready, results, timeout))
        clients.start()
        start_writer = threading.Event()
        writer = threading.Thread(target=commit_steps, args=(task, args.steps, args.interval_ms / 1000, committed,
                                                             start_writer), daemon=True)
        writer.start()
        if not ready.wait(60):
            raise RuntimeError("the clients did not connect")
        start_writer.set()
        ws_arrived, sse_arrived = results.get(timeout=timeout)
        clients.join(30)
        writer.join(30)
        ws, sse = latencies(committed, ws_arrived), latencies(committed, sse_arrived)
        result = {
            "benchmark": "realtime_latency",
            "steps": args.steps,
            "commit_interval_ms": args.interval_ms,
            "websocket": harness.summary_ms(ws),
            "sse": harness.summary_ms(sse),
            "websocket_in_order_once": sorted(ws_arrived) == list(range(args.steps)),
            "sse_in_order_once": sorted(sse_arrived) == list(range(args.steps)),
            "target_p95_ms": 20,
            "machine": harness.machine(),
            # Other work on the machine shows up directly in these figures.
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
        result["target_met"] = max(result["websocket"]["p95_ms"], result["sse"]["p95_ms"]) < 20
        harness.emit("realtime_latency", result)
    finally:
        server.stop()
        env.close()


if __name__ == "__main__":
    main()
