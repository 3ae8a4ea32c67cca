"""The peer of bench.throughput: N LangGraph runs at once in one event loop, AsyncPostgresSaver.

The same graph shape as bench/langgraph_agent.py (a fake model node, a ToolNode with the
calculator, a plain "finish" node, a script of node names taken from an AgentOS run's step
kinds) but async: the model node awaits ``asyncio.sleep(latency)`` like a hosted model, and
the checkpointer (durability "sync": every step written before the next starts) uses an
async psycopg pool. All runs start together, as the AgentOS tasks do.

LangGraph is installed from bench/requirements.txt only; the product never imports it.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import psutil

from bench.langgraph_agent import assemble, model_reply


def build_graph(checkpointer, script: list[str], latency_s: float, model_times: list[float]):
    from langchain_core.messages import AIMessage

    async def model(state) -> dict:
        await asyncio.sleep(latency_s)
        model_times.append(time.time())
        return {"messages": [model_reply(state, script)]}

    async def finish(state) -> dict:
        return {"messages": [AIMessage(content="result")]}

    return assemble(checkpointer, script, model, finish)


async def _run_all(url: str, script: list[str], tasks: int, latency_s: float, pool_size: int) -> dict:
    from langchain_core.messages import HumanMessage
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    model_times: list[float] = []
    options = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    async with AsyncConnectionPool(url, min_size=pool_size, max_size=pool_size, open=False, kwargs=options) as pool:
        saver = AsyncPostgresSaver(pool)
        await saver.setup()
        graph = build_graph(saver, script, latency_s, model_times)

        async def one() -> bool:
            config = {"configurable": {"thread_id": str(uuid.uuid4())}, "recursion_limit": len(script) + 10}
            state = await graph.ainvoke({"messages": [HumanMessage(content="Compute 12 * 7 and 3 + 4")]},
                                        config, durability="sync")
            return len(state["messages"]) == len(script) + 1

        started = time.monotonic()
        outcomes = await asyncio.gather(*(one() for _ in range(tasks)), return_exceptions=True)
        elapsed = time.monotonic() - started
    errors = [repr(o) for o in outcomes if isinstance(o, BaseException)]
    return {"model_times": sorted(model_times), "seconds": elapsed, "completed": sum(o is True for o in outcomes),
            "errors": errors[:3], "error_count": len(errors)}


def measure(*, url: str, script: list[str], tasks: int, latency_s: float, pool_size: int = 20) -> dict:
    """model steps/s in the 10-90 % window (as bench.throughput counts AgentOS), completed runs, peak RSS."""
    process, peak, stopping = psutil.Process(), [0], threading.Event()

    def sample() -> None:
        while not stopping.wait(0.2):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        outcome = asyncio.run(_run_all(url, script, tasks, latency_s, pool_size))
    finally:
        stopping.set()
        sampler.join()
    times = outcome["model_times"]
    low, high = int(len(times) * 0.1), int(len(times) * 0.9)
    window = times[high] - times[low] if len(times) > 1 else 0.0
    rate = (high - low) / window if window > 0 else 0.0
    return {"tasks": tasks, "model_steps": len(times), "model_steps_per_s": round(rate, 2),
            "completed": outcome["completed"], "lost": tasks - outcome["completed"],
            "errors": outcome["errors"], "seconds": round(outcome["seconds"], 1),
            "checkpointer_pool": pool_size, "peak_rss_mb": round(peak[0] / 2**20, 1),
            "script": [kind for kind in script], "fraction_of_ideal": round(rate / (tasks / latency_s), 3)}


__all__ = ["measure"]
