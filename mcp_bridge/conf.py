"""Parsing of the MCP settings' environment values (used by agentos/settings.py; no Django models)."""

from __future__ import annotations

import json
import re

from django.core.exceptions import ImproperlyConfigured

# ``${NAME}`` in a header or environment value: the variable NAME of AgentOS's environment.
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_stdio_commands(name: str, raw: str) -> dict[str, dict]:
    """``{"key": ["command", "arg", ...]}`` or ``{"key": {"command": [...], "env": {"VAR": "${NAME}"}}}``
    → ``{"key": {"command": [...], "env": {...}}}``; a bad value fails at start-up naming ``name``."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be a JSON object: {error}") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object of name -> command")
    commands = {}
    for key, entry in value.items():
        if isinstance(entry, list):
            entry = {"command": entry}
        command, env = (entry.get("command"), entry.get("env") or {}) if isinstance(entry, dict) else (None, None)
        if not (isinstance(command, list) and command and all(isinstance(part, str) and part for part in command)):
            raise ImproperlyConfigured(f"{name}[{key!r}] must be a non-empty list of strings (the command line)")
        if not (isinstance(env, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
            raise ImproperlyConfigured(f"{name}[{key!r}].env must map variable names to strings")
        commands[str(key)] = {"command": list(command), "env": dict(env)}
    return commands
