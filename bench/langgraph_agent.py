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


def model_reply(state, script: list[str]):
    """The fake model's message at this point of the script: a calculator call when a tool
    step comes next, else a final answer of the size AgentOS stores for an LLM step."""
    from langchain_core.messages import AIMessage

    index = len(state["messages"]) - 1  # each step appends one message to the human one
    if index + 1 < len(script) and script[index + 1] == TOOL:
        return AIMessage(content="", tool_calls=[{
            "name": "calculator", "args": {"expression": f"{index} + 1"}, "id": f"call_{index}"}])
    return AIMessage(content='{"action": "finish", "result": "' + "x" * 160 + '"}')


def assemble(checkpointer, script: list[str], model, finish):
    """The graph: ``model`` and ``finish`` nodes (sync or async) and a ToolNode with the
    calculator, each followed by the script's next node."""
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

    graph = StateGraph(MessagesState)
    graph.add_node(MODEL, model)
    graph.add_node(TOOL, ToolNode([calculator]))
    graph.add_node(FINISH, finish)
    targets = {MODEL: MODEL, TOOL: TOOL, FINISH: FINISH, END: END}
    graph.add_conditional_edges(START, lambda _state: script[0], targets)
    for node in (MODEL, TOOL, FINISH):
        graph.add_conditional_edges(node, route, targets)
    return graph.compile(checkpointer=checkpointer)


def build_graph(checkpointer, script: list[str], timer: Timer):
    from langchain_core.messages import AIMessage

    def model(state) -> dict:
        started = time.perf_counter()
        message = model_reply(state, script)
        timer.model_seconds.append(time.perf_counter() - started)
        return {"messages": [message]}

    def finish(state) -> dict:
        return {"messages": [AIMessage(content="result")]}

    return assemble(checkpointer, script, model, finish)


class LangGraphSession:
    """A compiled graph on a PostgresSaver connection; :meth:`run_one` runs one thread of the script."""

    def __init__(self, url: str, script: list[str]) -> None:
        from langgraph.checkpoint.postgres import PostgresSaver

        self.script = script
        self._context = PostgresSaver.from_conn_string(url)
        saver = self._context.__enter__()
        saver.setup()
        self.timer = Timer()
        self.graph = build_graph(saver, script, self.timer)

    def close(self) -> None:
        self._context.__exit__(None, None, None)

    def run_one(self) -> tuple[list[float], float]:
        """(per-step seconds with the fake model's time removed, wall seconds likewise) of one run."""
        from langchain_core.messages import HumanMessage

        config = {"configurable": {"thread_id": str(uuid.uuid4())}, "recursion_limit": len(self.script) + 10}
        first_model = len(self.timer.model_seconds)
        started = last = time.perf_counter()
        deltas = []
        # With durability="sync" a step's checkpoint is written before the next step starts,
        # so the time between two updates covers one step and its write.
        for _update in self.graph.stream({"messages": [HumanMessage(content="Compute 12 * 7 and 3 + 4")]},
                                         config, stream_mode="updates", durability="sync"):
            now = time.perf_counter()
            deltas.append(now - last)
            last = now
        elapsed = time.perf_counter() - started
        model_times = self.timer.model_seconds[first_model:]
        model_iter = iter(model_times)
        steps = [delta - (next(model_iter, 0.0) if kind == MODEL else 0.0)
                 for kind, delta in zip(self.script, deltas, strict=False)]
        return steps, elapsed - sum(model_times)


@dataclass
class LangGraphRun:
    step_seconds: list[float]  # per step, model time excluded
    wall_seconds: float
    steps: int


def run_langgraph(*, url: str, tasks: int, script: list[str], warmup: int = 3) -> LangGraphRun:
    """Run `tasks` threads of `script` one after another; time every step."""
    session = LangGraphSession(url, script)
    try:
        for _ in range(warmup):
            session.run_one()
        step_seconds: list[float] = []
        wall = 0.0
        for _ in range(tasks):
            steps, elapsed = session.run_one()
            step_seconds += steps
            wall += elapsed
    finally:
        session.close()
    return LangGraphRun(step_seconds=step_seconds, wall_seconds=wall, steps=len(step_seconds))
