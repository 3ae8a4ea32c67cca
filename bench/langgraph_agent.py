"""The peer workload: the same agent loop in LangGraph with its PostgresSaver checkpointer.

A graph with a fake model node, a ToolNode (the usual ReAct shape) and a plain "finish"
node. A script (one entry per step, taken from an AgentOS run's step kinds) says which
node runs next, so both systems commit the same number of model and tool steps. The
checkpointer runs with durability="sync": every step is written to PostgreSQL before the
next one starts, the guarantee AgentOS gives for every committed step.

LangGraph is installed from bench/requirements.txt only; the product never imports it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

MODEL, TOOL, FINISH = "model", "tools", "finish"
# AgentOS step kinds that are model calls / tool calls; every other kind is a plain step.
MODEL_KINDS = {"plan", "llm", "summary", "synthesis"}
TOOL_KINDS = {"tool"}


def script_from_kinds(kinds: list[str]) -> list[str]:
    """One LangGraph node per AgentOS step kind, in the same order."""
    return [MODEL if kind in MODEL_KINDS else TOOL if kind in TOOL_KINDS else FINISH for kind in kinds]


@dataclass
class Timer:
    """Time spent inside the fake model, to exclude it like AgentOS's LLM time."""

    model_seconds: list[float] = field(default_factory=list)


def build_graph(checkpointer, script: list[str], timer: Timer):
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode

    @tool
    def calculator(expression: str) -> str:
        """Evaluate a sum of integers."""
        return str(sum(int(part) for part in expression.split("+")))

    def position(state) -> int:
        return len(state["messages"]) - 1  # each step appends one message to the human one

    def route(state) -> str:
        index = position(state)
        return script[index] if index < len(script) else END

    def model(state) -> dict:
        started = time.perf_counter()
        index = position(state)
        wants_tool = index + 1 < len(script) and script[index + 1] == TOOL
        if wants_tool:
            message = AIMessage(content="", tool_calls=[{
                "name": "calculator", "args": {"expression": f"{index} + 1"}, "id": f"call_{index}"}])
        else:
            # A model reply of the size AgentOS stores for an LLM step's JSON output.
            message = AIMessage(content='{"action": "finish", "result": "' + "x" * 160 + '"}')
        timer.model_seconds.append(time.perf_counter() - started)
        return {"messages": [message]}

    def finish(state) -> dict:
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


@dataclass
class LangGraphRun:
    step_seconds: list[float]  # per step, model time excluded
    wall_seconds: float
    steps: int
    model_seconds: float


def run_langgraph(*, url: str, tasks: int, script: list[str], warmup: int = 3) -> LangGraphRun:
    """Run `tasks` threads of `script` one after another on a PostgresSaver; time every step."""
    from langchain_core.messages import HumanMessage
    from langgraph.checkpoint.postgres import PostgresSaver

    with PostgresSaver.from_conn_string(url) as saver:
        saver.setup()
        timer = Timer()
        graph = build_graph(saver, script, timer)
        step_seconds: list[float] = []
        wall = 0.0
        for number in range(warmup + tasks):
            config = {"configurable": {"thread_id": str(uuid.uuid4())}, "recursion_limit": len(script) + 10}
            first_model = len(timer.model_seconds)
            started = last = time.perf_counter()
            deltas = []
            for _update in graph.stream({"messages": [HumanMessage(content="Compute 12 * 7 and 3 + 4")]},
                                        config, stream_mode="updates", durability="sync"):
                now = time.perf_counter()
                deltas.append(now - last)
                last = now
            elapsed = time.perf_counter() - started
            model_times = timer.model_seconds[first_model:]
            if number < warmup:
                continue
            model_iter = iter(model_times)
            for kind, delta in zip(script, deltas, strict=False):
                step_seconds.append(delta - (next(model_iter, 0.0) if kind == MODEL else 0.0))
            wall += elapsed - sum(model_times)
        measured_model = sum(timer.model_seconds[-tasks * script.count(MODEL):]) if tasks else 0.0
    return LangGraphRun(step_seconds=step_seconds, wall_seconds=wall, steps=len(step_seconds),
                        model_seconds=measured_model)
