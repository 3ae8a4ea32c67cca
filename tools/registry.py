"""The tool registry: each tool is data (name, description, JSON Schema, flags) plus a handler.

The argument schema comes from one place, the tool's Pydantic model, through
:func:`schema_of`. Tools are registered with :func:`register` when :mod:`tools.builtins`
is imported; an administrator can disable any of them (``ToolSetting``).

Tools that live elsewhere (those of registered MCP servers, mcp_bridge) come from
providers (:func:`register_provider`): functions returning the current ToolSpecs, asked on
every lookup, so a tool added or removed elsewhere is seen at once by every process.

A caller that reads the providers' versions (:func:`provider_versions_sql`, one SQL
expression; the runner reads it in its slice-start statement, tasks/lookups.py) passes them
as ``versions`` and gets the provided tools from this process's cache as long as the
versions have not changed: no query, and still current in every process, because a version
is read from the database each time.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel

from tools.errors import ToolError

__all__ = ["ToolError", "ToolSpec", "UnknownTool", "all_tools", "get_tool", "register", "register_provider",
           "schema_of"]
logger = logging.getLogger(__name__)
BUILTIN_MODULES = ("tools.builtins.calculator", "tools.builtins.data_analysis", "tools.builtins.human",
                   "tools.builtins.memory_tools", "tools.builtins.web")

class UnknownTool(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown tool '{name}'")
        self.name = name


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict
    requires_approval: bool
    side_effects: bool
    timeout_s: float
    handler: Callable[..., Any]  # handler(arguments: <args model>, context: ToolContext) -> JSON-able value
    args_model: type[BaseModel] | None = None
    # ask_human: the orchestrator turns a call into a wait for a person instead of dispatching it.
    waits_for_human: bool = False
    # Computation only (no I/O, no database, no use of the context): runs in a tool process
    # with memory and CPU limits and is killed at timeout_s (tools/sandbox.py). Its handler
    # and args model must be top-level names of a module that imports no Django.
    pure: bool = False

    @cached_property
    def validator(self) -> Draft202012Validator:
        """The arguments' validator, built once per spec (the schema does not change)."""
        return Draft202012Validator(self.parameters)

    def as_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "parameters": self.parameters,
                "requires_approval": self.requires_approval, "side_effects": self.side_effects}


def _strip_titles(node: Any) -> Any:
    """Pydantic's generated titles only repeat the field names; they cost prompt tokens."""
    if isinstance(node, dict):
        return {key: _strip_titles(value) for key, value in node.items()
                if not (key == "title" and isinstance(value, str))}
    if isinstance(node, list):
        return [_strip_titles(item) for item in node]
    return node


def schema_of(model: type[BaseModel]) -> dict:
    schema = _strip_titles(model.model_json_schema())
    schema.setdefault("properties", {})
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


_REGISTRY: dict[str, ToolSpec] = {}


@dataclass(frozen=True)
class _Provider:
    specs: Callable[[], list[ToolSpec]]
    # A parameterless SQL expression whose value changes whenever specs() may return
    # something else (built lazily: it may need the models).
    version_sql: Callable[[], str] | None = None


_PROVIDERS: list[_Provider] = []
# provider -> (its version when last asked, what it returned then)
_PROVIDED: dict[_Provider, tuple[Any, list[ToolSpec]]] = {}


def register(*, name: str, description: str, args: type[BaseModel], requires_approval: bool = False,
             side_effects: bool = False, timeout_s: float = 10.0,
             waits_for_human: bool = False, pure: bool = False) -> Callable[[Callable], Callable]:
    """Decorator: ``@register(name="calculator", description=..., args=CalculatorArgs)``."""

    def decorator(handler: Callable) -> Callable:
        if pure and ("<locals>" in handler.__qualname__ or "<locals>" in args.__qualname__):
            raise ValueError(f"pure tool {name}: the handler and args model must be top-level names")
        _REGISTRY[name] = ToolSpec(name=name, description=description, parameters=schema_of(args),
                                   requires_approval=requires_approval, side_effects=side_effects,
                                   timeout_s=timeout_s, handler=handler, args_model=args,
                                   waits_for_human=waits_for_human, pure=pure)
        return handler

    return decorator


def register_provider(provider: Callable[[], list[ToolSpec]], *,
                      version_sql: Callable[[], str] | None = None) -> None:
    """Add a source of tools that are not registered by import. A provider must be cheap (it
    runs on every lookup without ``versions``); if it raises (no database in this process),
    it offers no tools for that lookup, and nothing is cached. Its names must not clash with
    built-ins (a built-in wins). ``version_sql``: returns a parameterless SQL expression
    whose value changes whenever the provider's answer may change (see the module docstring)."""
    if all(entry.specs is not provider for entry in _PROVIDERS):
        _PROVIDERS.append(_Provider(provider, version_sql))


def provider_versions_sql() -> str:
    """One parameterless SQL expression: a JSON array of each provider's version (null for a
    provider without one, which is then asked on every lookup)."""
    parts = [entry.version_sql() if entry.version_sql else "NULL" for entry in _PROVIDERS]
    return f"json_build_array({', '.join(parts)})"


def _provided(versions: list | None = None) -> dict[str, ToolSpec]:
    """The providers' tools; ``versions``: the value of :func:`provider_versions_sql` when
    the caller has just read it (a provider whose version is unchanged is not asked)."""
    specs: dict[str, ToolSpec] = {}
    for position, entry in enumerate(_PROVIDERS):
        version = versions[position] if versions is not None and position < len(versions) else None
        cached = _PROVIDED.get(entry)
        if version is not None and cached is not None and cached[0] == version:
            provided = cached[1]
        else:
            try:
                provided = entry.specs()
            except Exception as error:  # noqa: BLE001 - see register_provider
                logger.debug("tools of %r unavailable: %s", entry.specs, error)
                continue
            if version is not None:
                # Read after the version: at worst newer than it, so a change is never missed
                # (it only costs one more call when the next version is read).
                _PROVIDED[entry] = (version, provided)
        for spec in provided:
            if spec.name not in _REGISTRY:
                specs.setdefault(spec.name, spec)
    return specs


def _tool_modules() -> list[str]:
    from django.conf import settings

    return [*BUILTIN_MODULES, *getattr(settings, "TOOLS_EXTRA_MODULES", [])]


_loaded = False


def load_builtins() -> None:
    """Import the modules that register the built-in tools (once per process)."""
    global _loaded
    if not _loaded:
        for module in _tool_modules():
            importlib.import_module(module)
        _loaded = True


def pure_tool_modules() -> list[str]:
    """The modules a tool process imports up front: those of the registered pure tools."""
    load_builtins()
    modules = {spec.handler.__module__ for spec in _REGISTRY.values() if spec.pure}
    return sorted(modules | {"tools.errors"})


def all_tools(versions: list | None = None) -> list[ToolSpec]:
    """Every registered and provided tool, by name. ``versions``: see :func:`_provided`."""
    load_builtins()
    return sorted([*_REGISTRY.values(), *_provided(versions).values()], key=lambda spec: spec.name)


def get_tool(name: str) -> ToolSpec:
    load_builtins()
    spec = _REGISTRY.get(name) or (_provided().get(name) if _PROVIDERS else None)
    if spec is None:
        raise UnknownTool(name)
    return spec


def disabled_names() -> set[str]:
    from tools.models import ToolSetting

    return set(ToolSetting.objects.filter(enabled=False).values_list("name", flat=True))


def is_enabled(name: str) -> bool:
    return name not in disabled_names()


def enabled_tools(disabled: set[str] | None = None, versions: list | None = None) -> list[ToolSpec]:
    """Registered tools an administrator has not disabled (no settings row means enabled).
    ``disabled``: the disabled names when the caller already read them; ``versions``: the
    providers' versions when the caller already read them (:func:`_provided`)."""
    disabled = disabled_names() if disabled is None else disabled
    return [spec for spec in all_tools(versions) if spec.name not in disabled]
