"""The default prompts shipped in prompts/defaults/, and their idempotent loader.

Each template is two files: ``<slug>.j2`` (the body) and ``<slug>.schema.json`` (the JSON
Schema of the model's answer). ``load_defaults`` (called by ``manage.py bootstrap``):

- creates a missing template with version 1 active;
- when a shipped body changed and the newest version of that template is still a shipped
  one (nobody wrote a newer version), adds the new body as the next version, and moves
  activation to it only if the previous shipped version was the active one;
- never edits or duplicates a version, never touches a template whose newest version a
  user wrote, and never replaces a response schema somebody edited.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from prompts.models import PromptTemplate, PromptVersion
from prompts.services import prompt_template_create, prompt_version_create

DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"
SHIPPED_NOTE = "Default prompt shipped with AgentOS"
UPDATED_NOTE = "Updated default prompt shipped with AgentOS"

_AGENT_VARIABLES = ["query", "subtask", "agent", "tools", "max_steps", "steps_left", "actions"]
_SAMPLE_AGENT = {
    "query": "Compare the population growth of Lisbon and Porto since 2010.",
    "subtask": "Find the population of Lisbon and Porto in 2010 and in the latest year available.",
    "agent": {"name": "research", "description": "Finds facts with search and memory tools."},
    "tools": [{"name": "web_search", "description": "Search the web.",
               "parameters": {"type": "object", "properties": {"query": {"type": "string"}},
                              "required": ["query"]}}],
    "max_steps": 6,
    "steps_left": 6,
    "actions": ["tool", "ask_human", "finish"],
}


@dataclass(frozen=True)
class DefaultPrompt:
    slug: str
    description: str
    variables: list[str]
    temperature: float
    max_tokens: int
    sample: dict[str, Any]

    def body(self) -> str:
        return (DEFAULTS_DIR / f"{self.slug}.j2").read_text(encoding="utf-8")

    def schema(self) -> dict:
        return json.loads((DEFAULTS_DIR / f"{self.slug}.schema.json").read_text(encoding="utf-8"))


DEFAULT_PROMPTS = [
    DefaultPrompt("plan", "Breaks the request into subtasks, each assigned to an agent (uses pre-fetched memory).",
                  ["query", "agents", "memory", "max_subtasks"], 0.2, 1200,
                  {"query": _SAMPLE_AGENT["query"],
                   "agents": [{"name": "research", "description": "Finds facts."},
                              {"name": "analysis", "description": "Computes and compares."},
                              {"name": "synthesis", "description": "Writes the answer."}],
                   "memory": [{"content": "Lisbon had 547,733 residents in 2011.", "score": 0.82}],
                   "max_subtasks": 5}),
    DefaultPrompt("agent_research", "One step of the research agent: call a tool, ask the human, or finish.",
                  _AGENT_VARIABLES, 0.2, 1500, _SAMPLE_AGENT),
    DefaultPrompt("agent_analysis", "One step of the analysis agent: call a tool, ask the human, or finish.",
                  _AGENT_VARIABLES, 0.1, 1500,
                  {**_SAMPLE_AGENT, "agent": {"name": "analysis", "description": "Computes and compares."}}),
    DefaultPrompt("agent_synthesis", "One step of the synthesis agent: call a tool, ask the human, or finish.",
                  _AGENT_VARIABLES, 0.4, 2000,
                  {**_SAMPLE_AGENT, "agent": {"name": "synthesis", "description": "Writes the answer."}}),
    DefaultPrompt("summarize", "Compresses a task's history when the context window is over budget.",
                  ["query", "transcript"], 0.1, 800,
                  {"query": _SAMPLE_AGENT["query"],
                   "transcript": "research: web_search(Lisbon population 2010) -> 547,631 (INE)."}),
    DefaultPrompt("synthesize", "Writes the final Markdown answer from the subtask results.",
                  ["query", "results"], 0.3, 2000,
                  {"query": _SAMPLE_AGENT["query"],
                   "results": [{"subtask": "Find the populations", "agent": "research", "status": "completed",
                                "result": "Lisbon: 547,631 (2011), 545,796 (2021)."}]}),
]


def schema_digest(schema: Any) -> str:
    return hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()


def _create(default: DefaultPrompt) -> None:
    schema = default.schema()
    template = prompt_template_create(slug=default.slug, description=default.description, response_schema=schema,
                                      required_variables=default.variables, sample_variables=default.sample)
    template.shipped_schema_digest = schema_digest(schema)
    template.save(update_fields=["shipped_schema_digest"])
    prompt_version_create(template=template, body=default.body(), temperature=default.temperature,
                          max_tokens=default.max_tokens, note=SHIPPED_NOTE, origin=PromptVersion.Origin.SHIPPED,
                          activate=True)


def _refresh(template: PromptTemplate, default: DefaultPrompt) -> bool:
    """Bring an existing template up to the shipped files where nobody changed it."""
    changed = False
    # Adding a declared variable never breaks an existing body, so the union is safe.
    missing = [name for name in default.variables if name not in template.declared_variables]
    if missing:
        template.required_variables = list(template.required_variables or []) + missing
        changed = True
    schema = default.schema()
    digest = schema_digest(schema)
    unedited = template.shipped_schema_digest and schema_digest(template.response_schema) == \
        template.shipped_schema_digest
    if (template.response_schema is None or unedited) and template.shipped_schema_digest != digest:
        template.response_schema, template.shipped_schema_digest = schema, digest
        changed = True
    if changed:
        template.save()

    body = default.body()
    newest = template.versions.order_by("-number").first()
    if newest is None or newest.origin != PromptVersion.Origin.SHIPPED or newest.body == body:
        return changed
    if template.versions.filter(origin=PromptVersion.Origin.SHIPPED, body=body).exists():
        return changed  # this shipped body was loaded before; never duplicate it
    prompt_version_create(template=template, body=body, temperature=default.temperature,
                          max_tokens=default.max_tokens, note=UPDATED_NOTE, origin=PromptVersion.Origin.SHIPPED,
                          activate=newest.is_active)
    return True


def load_defaults() -> str:
    """Create or update the default prompts; returns a one-line summary."""
    created = updated = 0
    for default in DEFAULT_PROMPTS:
        with transaction.atomic():
            # Lock the row (if any) so two bootstraps at once cannot both add a version.
            template = PromptTemplate.objects.select_for_update().filter(slug=default.slug).first()
            if template is None:
                _create(default)
                created += 1
            elif _refresh(template, default):
                updated += 1
    unchanged = len(DEFAULT_PROMPTS) - created - updated
    return f"{len(DEFAULT_PROMPTS)} templates: {created} created, {updated} updated, {unchanged} unchanged"
