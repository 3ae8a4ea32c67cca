"""MCP servers an administrator registered, and the tools each one offered when last listed.

No secret is stored here: a header value may name environment variables (``${NAME}``),
read when AgentOS connects; a stdio server is a key of ``settings.MCP_STDIO_COMMANDS``,
never a command line typed in the admin.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from mcp_bridge.conf import PLACEHOLDER

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,29}$"
# Header names whose value must come from the environment (``${NAME}``), never typed in.
SENSITIVE_HEADER = re.compile(r"authorization|cookie|token|secret|key|password", re.IGNORECASE)


class Transport(models.TextChoices):
    HTTP = "http", "streamable HTTP"
    STDIO = "stdio", "stdio (allowlisted command)"


def stdio_command_choices() -> list[tuple[str, str]]:
    return [(key, key) for key in sorted(settings.MCP_STDIO_COMMANDS)]


class McpServer(models.Model):
    name = models.CharField(
        max_length=30, unique=True, validators=[RegexValidator(NAME_PATTERN)],
        help_text="Namespace of its tools (<name>.<tool>): lowercase letters, digits, _ and -.")
    description = models.CharField(max_length=300, blank=True, default="")
    transport = models.CharField(max_length=8, choices=Transport.choices, default=Transport.HTTP)
    url = models.URLField(max_length=500, blank=True, default="",
                          help_text="Streamable HTTP endpoint (http transport).")
    headers = models.JSONField(
        default=dict, blank=True,
        help_text='HTTP headers, e.g. {"Authorization": "Bearer ${GITHUB_TOKEN}"}: ${NAME} is read from '
                  "the environment of AgentOS when it connects; secret headers must use it.")
    command = models.CharField(max_length=100, blank=True, default="",
                               help_text="A key of MCP_STDIO_COMMANDS (stdio transport).")
    enabled = models.BooleanField(default=True, help_text="Off: its tools fail with 'disabled' and are not refreshed.")
    timeout_s = models.FloatField(default=30.0, validators=[MinValueValidator(1.0), MaxValueValidator(600.0)],
                                  help_text="Seconds a tool call (connection included) may take.")
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_code = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "MCP server"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.transport == Transport.HTTP:
            if not self.url:
                raise ValidationError({"url": "A streamable HTTP server needs its URL."})
            if not self.url.startswith(("http://", "https://")):
                raise ValidationError({"url": "Only http and https URLs."})
        elif self.command not in settings.MCP_STDIO_COMMANDS:
            allowed = ", ".join(sorted(settings.MCP_STDIO_COMMANDS)) or "none configured"
            raise ValidationError({"command": f"Choose one of MCP_STDIO_COMMANDS ({allowed})."})
        if not isinstance(self.headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items()):
            raise ValidationError({"headers": "A JSON object of header names to string values."})
        for header, value in self.headers.items():
            if SENSITIVE_HEADER.search(header) and not PLACEHOLDER.search(value):
                raise ValidationError({"headers": f"{header} looks secret: put it in an environment variable "
                                                  f"and write ${{NAME}} here."})


class McpTool(models.Model):
    """A tool as its server last listed it. ``removed_at``: no longer listed (calls fail with
    tool_removed); ``schema_problem``: its input schema is not valid JSON Schema (calls fail
    with mcp_invalid_schema). Whether agents may use it is the tool's ToolSetting row, created
    disabled when the tool is first seen."""

    server = models.ForeignKey(McpServer, on_delete=models.CASCADE, related_name="tools")
    name = models.CharField(max_length=128)
    description = models.TextField(blank=True, default="")
    input_schema = models.JSONField(default=dict, blank=True)
    schema_problem = models.CharField(max_length=300, blank=True, default="")
    annotations = models.JSONField(default=dict, blank=True)
    side_effects = models.BooleanField(
        default=True, help_text="Calls carry an idempotency key (_meta[\"agentos/idempotency-key\"]). On unless the "
                                "server marks the tool read-only.")
    requires_approval = models.BooleanField(
        default=False, help_text="A person approves each call inside a task. On when the server marks the tool "
                                 "destructive.")
    removed_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["server__name", "name"]
        constraints = [models.UniqueConstraint(fields=["server", "name"], name="mcptool_unique_per_server")]
        verbose_name = "MCP tool"

    def __str__(self) -> str:
        return self.qualified_name

    @property
    def qualified_name(self) -> str:
        return f"{self.server.name}.{self.name}"
