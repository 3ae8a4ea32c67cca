"""A loopback OpenAI-compatible server for bench.throughput --openai: every chat completion
is answered after a fixed latency, so the OpenAI provider's whole client path (the SDK,
HTTP, retries, decoding, validation) runs under load.

The reply depends on the call, found from the system prompt as in
tasks/tests/test_provider_faults.py: the planner gets one subtask, the agent finishes, the
synthesis answers. A task is then plan, llm, synthesis and result steps (3 model calls).
"""

from __future__ import annotations

import json
from typing import Any

from agentos.llm.fake_server import FakeLLMServer, Reply, chat_completion

PLAN = {"subtasks": [{"id": "s1", "description": "Compute 12 times 7.", "agent": "analysis"}]}
FINISH = {"action": "finish", "result": "12 times 7 is 84."}
SYNTHESIS = {"result": "The answer is 84."}


def _call(body: dict) -> str:
    system = next((m.get("content") for m in body.get("messages", []) if m.get("role") == "system"), "")
    system = system if isinstance(system, str) else json.dumps(system)
    if system.startswith("You are the planner"):
        return "plan"
    return "synthesis" if system.startswith("You write the final answer") else "agent"


class LoopbackLLM(FakeLLMServer):
    def __init__(self, *, latency_s: float) -> None:
        super().__init__()
        self.latency_s = latency_s
        self._server.socket.listen(1024)  # hundreds of clients connect at once

    def _next(self, path: str, body: Any) -> Reply:
        data = {"plan": PLAN, "agent": FINISH, "synthesis": SYNTHESIS}[_call(body if isinstance(body, dict) else {})]
        reply = chat_completion(json.dumps(data))
        reply.delay_s = self.latency_s
        return reply

    def env(self) -> dict[str, str]:
        """Settings that point the AgentOS processes at this server."""
        return {"LLM_PROVIDER": "openai", "OPENAI_API_KEY": "loopback", "OPENAI_BASE_URL": f"{self.url}/v1",
                "LLM_MODEL": "loopback-model", "LLM_TIMEOUT": "30"}
