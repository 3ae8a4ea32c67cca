"""Default micro-agents: research, analysis and synthesis (editable in the admin).

``load_defaults`` is idempotent and never overwrites an agent an administrator changed:
it only creates the agents that do not exist yet.
"""

from __future__ import annotations

from tasks.models import AgentSpec

DEFAULT_AGENTS = [
    {
        "name": "research",
        "description": "Finds facts: searches the web and the knowledge base, reads pages, and asks the "
        "user when something only they know is needed.",
        "prompt_slug": "agent_research",
        "allowed_tools": ["web_search", "memory_search", "http_get", "ask_human"],
        "max_steps": 6,
    },
    {
        "name": "analysis",
        "description": "Computes and compares: arithmetic, statistics over numbers and tables, and "
        "lookups in the knowledge base.",
        "prompt_slug": "agent_analysis",
        "allowed_tools": ["calculator", "data_analysis", "memory_search"],
        "max_steps": 6,
    },
    {
        "name": "synthesis",
        "description": "Writes: combines findings into a summary, report or answer, and can save notes to "
        "the knowledge base.",
        "prompt_slug": "agent_synthesis",
        "allowed_tools": ["memory_search", "memory_store"],
        "max_steps": 4,
    },
]


def load_defaults() -> str:
    created = 0
    for spec in DEFAULT_AGENTS:
        _, was_created = AgentSpec.objects.get_or_create(name=spec["name"], defaults=spec)
        created += was_created
    return f"{created} agents created, {len(DEFAULT_AGENTS) - created} already present"
