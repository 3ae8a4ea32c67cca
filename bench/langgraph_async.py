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

from bench.langgraph_agent import FINISH, MODEL, TOOL


def build_graph(checkpointer, script: list[str], latency_s: float, model_times: list[float]):
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode

    @tool
    def calculator(expression: str) -> str:
        """Evaluate a sum of integers."""
        return str(sum(int(part) for part in expression.split("+")))

    def route(state) -> str:
        index = len(state["messages"]) - 1
        return script[index] if index < len(script) else END

    async def model(state) -> dict:
        index = len(state["messages"]) - 1
        await asyncio.sleep(latency_s)
        model_times.append(time.time())
        if index + 1 < len(script) and script[index + 1] == TOOL:
            return {"messages": [AIMessage(content="", tool_calls=[{
                "name": "calculator", "args": {"expression": f"{index} + 1"}, "id": f"call_{index}"}])]}
        return {"messages": [AIMessage(content='{"action": "finish", "result": "' + "x" * 160 + '"}')]}

    async def finish(state) -> dict:
        return {"messages": [AIMessage(content="result")]}

    graph = StateGraph(MessagesState)
    graph.add_node(MODEL, model)
    graph.add_node(TOOL, ToolNode([calculator]))
    graph.add_node(FINISH, finish)
    targets = {MODEL: MODEL, TOOL: TOOL, FINISH: FINISH, END: END}
    graph.add_conditional_edges(START, lambda _state: script[0], targets)
    for node in (MODEL, TOOL, FINISH):
        graph.add_conditional_edges(node, route, targets)
    return graph.compile(checkpointer=checkpointer)


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


__all__ = ["measure", "FINISH", "MODEL", "TOOL"]
