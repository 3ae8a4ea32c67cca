"""Hand-written step logs for the engine tests."""

from __future__ import annotations

from tasks.engine import AgentInfo, StepRecord, TaskState

AGENTS = {
    "research": AgentInfo("research", "Finds facts", "agent_research", ("web_search", "http_get", "ask_human"), 4),
    "analysis": AgentInfo("analysis", "Computes", "agent_analysis", ("calculator", "data_analysis"), 3),
}
PLAN = {"subtasks": [{"id": "s1", "description": "Research PostgreSQL history", "agent": "research"},
                     {"id": "s2", "description": "Average of 12, 15 and 30", "agent": "analysis"}]}


class Log:
    def __init__(self, **state) -> None:
        self.steps: list[StepRecord] = []
        self.options = state

    def add(self, kind: str, *, status: str = "ok", agent: str = "", subtask: str = "", input=None, output=None,
            error: str = "") -> Log:
        self.steps.append(StepRecord(len(self.steps), kind, status, agent, subtask, input or {}, output, error))
        return self

    def plan(self, output=None) -> Log:
        return self.add("plan", output=output or PLAN)

    def llm(self, subtask: str, output=None, *, error: str = "") -> Log:
        agent = "research" if subtask == "s1" else "analysis"
        if error:
            return self.add("llm", status="error", agent=agent, subtask=subtask, error=error)
        return self.add("llm", agent=agent, subtask=subtask, output=output)

    def tool_call(self, subtask: str, tool: str, arguments=None) -> Log:
        return self.llm(subtask, {"action": "tool", "tool": tool, "arguments": arguments or {}, "reason": "r"})

    def tool(self, subtask: str, tool: str, result=None, *, error: str = "") -> Log:
        agent = "research" if subtask == "s1" else "analysis"
        return self.add("tool", status="error" if error else "ok", agent=agent, subtask=subtask,
                        input={"tool": tool, "arguments": {}}, output=None if error else {"result": result},
                        error=error)

    def finish(self, subtask: str, result: str) -> Log:
        return self.llm(subtask, {"action": "finish", "result": result})

    def state(self, **overrides) -> TaskState:
        values = {"query": "Research the history of PostgreSQL and average 12, 15 and 30", "agents": AGENTS,
                  "steps": list(self.steps)} | self.options | overrides
        return TaskState(**values)
