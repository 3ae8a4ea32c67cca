"""The rules a webhook's or a schedule's settings must follow, shared by the admin's forms
(triggers/forms.py) and the workspace admins' API and page (triggers/editing.py)."""

from __future__ import annotations


def query_template_problem(body: str) -> str | None:
    """Why a webhook's query template cannot be used, or None (empty: no template)."""
    from jinja2 import TemplateSyntaxError

    from prompts.rendering import body_problems, referenced_variables

    if not (body or "").strip():
        return None
    try:
        names = referenced_variables(body)
    except TemplateSyntaxError as error:
        return f"Syntax error on line {error.lineno}: {error.message}"
    # Any payload key may be used, so only the sandbox's own objections remain.
    problems = body_problems(body, declared=names)
    return "; ".join(problems) if problems else None
