"""Errors of the prompts app.

They are ApplicationErrors so an API view can return them in the one error shape, and the
orchestrator catches :class:`PromptError` to record a failed step with a one-line message.
"""

from __future__ import annotations

from rest_framework import status

from agentos.api import ApplicationError


class PromptError(ApplicationError):
    """Any problem with a prompt; the message names the template, the version and the problem."""

    code = "prompt_error"


class PromptNotFound(PromptError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "prompt_not_found"


class PromptRenderError(PromptError):
    """The body does not parse, a variable is missing, or the sandbox refused an access."""

    code = "prompt_render_error"


class PromptValidationError(PromptError):
    """A body or schema was refused when saving; ``problems`` lists every reason."""

    code = "prompt_invalid"

    def __init__(self, message: str, *, problems: list[str] | None = None, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.problems = problems or [message]
