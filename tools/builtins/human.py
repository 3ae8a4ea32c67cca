"""ask_human (a wait for a person, handled by the orchestrator) and current_time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from tools.registry import ToolError, register


class AskHumanArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=2000, description="What to ask the person.")
    choices: list[str] | None = Field(default=None, max_length=10,
                                      description="Optional answers to choose from, e.g. ['yes', 'no'].")


@register(name="ask_human", args=AskHumanArgs, waits_for_human=True, timeout_s=1.0,
          description="Ask the person who started the task a question and wait for the answer.")
def ask_human(arguments: AskHumanArgs, context: object) -> dict:
    # Never reached through dispatch (waits_for_human); the orchestrator records a wait instead.
    raise ToolError("ask_human waits for a person's answer, so it only runs inside a task")


class CurrentTimeArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timezone: str | None = Field(default=None, max_length=64,
                                 description="IANA time zone such as 'Europe/Madrid'; UTC when omitted.")


@register(name="current_time", args=CurrentTimeArgs, timeout_s=2.0,
          description="The current date and time, in UTC or a given IANA time zone.")
def current_time(arguments: CurrentTimeArgs, context: object) -> dict:
    name = arguments.timezone or "UTC"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"unknown time zone '{name}'") from None
    now = datetime.now(UTC).astimezone(zone)
    return {"timezone": name, "iso": now.isoformat(timespec="seconds"), "date": now.date().isoformat(),
            "weekday": now.strftime("%A")}
