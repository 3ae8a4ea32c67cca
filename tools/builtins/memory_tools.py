"""memory_search and memory_store: the memory app's services as tools.

The memory app is imported when a tool runs, not when the registry loads, so the tools
app does not depend on it at import time.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.registry import ToolError, register


def owner_of(context: Any) -> Any:
    """The task owner as a User, or None (the shared knowledge base only)."""
    if getattr(context, "owner_id", None) is None:
        return None
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.filter(pk=context.owner_id).first()
    if owner is None:
        raise ToolError("the task owner no longer exists")
    return owner


def search(query: str, owner: Any, k: int, workspace_id: int | None = None) -> list[dict]:
    from agentos.api import ApplicationError
    from memory.services import memory_search

    try:
        hits = memory_search(query=query, owner=owner, workspace=workspace_id, k=k)
    except ApplicationError as error:
        raise ToolError(error.message) from None
    return [{"id": hit.id, "content": hit.content, "kind": hit.kind, "score": hit.score,
             "metadata": hit.metadata} for hit in hits]


class MemorySearchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=1000, description="What to look for.")
    k: int = Field(default=5, ge=1, le=20, description="How many entries to return.")


@register(name="memory_search", args=MemorySearchArgs, timeout_s=15.0,
          description="Search long-term memory (your notes, earlier task results and the shared knowledge "
                      "base) by meaning; returns the closest entries with scores.")
def memory_search_tool(arguments: MemorySearchArgs, context: Any) -> dict:
    # A task's search sees its workspace (and the shared entries), not all of its owner's.
    return {"hits": search(arguments.query, owner_of(context), arguments.k, getattr(context, "workspace_id", None))}


class MemoryStoreArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: str = Field(min_length=1, max_length=20000, description="The text to remember.")
    kind: Literal["note", "task_result", "document"] = Field(default="note", description="What kind of entry.")
    metadata: dict[str, Any] | None = Field(default=None, description="Optional extra fields to keep with it.")


@register(name="memory_store", args=MemoryStoreArgs, side_effects=True, timeout_s=15.0,
          description="Save a note to the task owner's long-term memory so later tasks can find it.")
def memory_store_tool(arguments: MemoryStoreArgs, context: Any) -> dict:
    from agentos.api import ApplicationError
    from memory.services import memory_add

    owner = owner_of(context)
    if owner is None:
        raise ToolError("memory_store needs a task owner; the shared knowledge base is not writable by tools")
    try:
        # The step's idempotency key makes a retried step return the entry it stored the first time.
        entry = memory_add(owner=owner, content=arguments.content, kind=arguments.kind,
                           metadata=arguments.metadata, source_task_id=getattr(context, "task_id", None),
                           idempotency_key=getattr(context, "idempotency_key", None),
                           workspace=getattr(context, "workspace_id", None))
    except ApplicationError as error:
        raise ToolError(error.message) from None
    if entry.owner_id != owner.pk:
        raise ToolError("this idempotency key was already used for another entry")
    return {"id": entry.id, "stored": True, "kind": entry.kind}
