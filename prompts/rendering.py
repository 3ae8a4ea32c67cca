"""Rendering prompt bodies: Jinja2 in a sandbox, strict about variables.

Bodies are written by staff and prompt editors in the admin, and by any user as a
webhook's query template, and filled with data that may come from users and from the web
(queries, tool results, memory). The immutable sandbox refuses access to underscore
attributes (``__class__`` and friends) and to methods that mutate; strict undefined turns a
missing variable into an error instead of an empty string. The sandbox is bounded
(prompts/sandbox.py): no value or text longer than PROMPT_RENDER_MAX_CHARS, at most
PROMPT_RENDER_MAX_STEPS loop iterations and calls, PROMPT_RENDER_MAX_SECONDS in all.
Autoescape is off: a prompt is plain text, not HTML.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from django.conf import settings
from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, meta, nodes
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from prompts.errors import PromptRenderError
from prompts.sandbox import BoundedSandbox, Budget, RenderLimitExceeded, text_of


def _tojson(value: Any, indent: int | None = None) -> str:
    # Jinja's own tojson escapes <, > and & for HTML; a prompt wants the JSON as written.
    return json.dumps(value, ensure_ascii=False, indent=indent, default=text_of)


def _make_environment() -> BoundedSandbox:
    return BoundedSandbox(
        undefined=StrictUndefined,
        autoescape=False,
        # Block tags ({% for %}, {% if %}) on their own lines leave no blank lines behind.
        trim_blocks=True,
        lstrip_blocks=True,
        filters={"tojson": _tojson},
    )


ENVIRONMENT = _make_environment()


def _too_deep() -> TemplateSyntaxError:
    return TemplateSyntaxError("the template nests too deeply", lineno=1)


def _parse(body: str) -> nodes.Template:
    try:
        return ENVIRONMENT.parse(body)
    except RecursionError:  # thousands of nested brackets or blocks
        raise _too_deep() from None


@lru_cache(maxsize=512)
def _compile(body: str) -> Template:
    # Keyed by the body text itself, so an edit or an activation can never hit a stale
    # entry; used versions are immutable, so the hit rate in a running worker is ~100%.
    try:
        return ENVIRONMENT.compile_body(body)
    except RecursionError:
        raise _too_deep() from None


def _syntax_message(error: TemplateSyntaxError) -> str:
    return f"syntax error on line {error.lineno}: {error.message}"


def referenced_variables(body: str) -> set[str]:
    """Names the body reads from its context (loop variables and globals excluded).

    Raises TemplateSyntaxError when the body does not parse.
    """
    tree = _parse(body)
    return set(meta.find_undeclared_variables(tree)) - set(ENVIRONMENT.globals)


def _unsafe_accesses(tree: nodes.Template) -> list[str]:
    """Underscore attributes named literally in the body; the sandbox refuses them at run time."""
    found = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            name = node.arg.value
        else:
            continue
        if name.startswith("_"):
            found.append(name)
    return sorted(set(found))


def body_problems(body: str, *, declared: set[str]) -> list[str]:
    """Every reason to refuse ``body`` when saving it; an empty list means it is fine."""
    try:
        tree = _parse(body)
    except TemplateSyntaxError as error:
        return [_syntax_message(error)]
    problems = []
    unknown = sorted(set(meta.find_undeclared_variables(tree)) - set(ENVIRONMENT.globals) - declared)
    if unknown:
        names = ", ".join(unknown)
        allowed = ", ".join(sorted(declared)) or "none"
        problems.append(f"uses undeclared variable(s) {names} (declared: {allowed})")
    unsafe = _unsafe_accesses(tree)
    if unsafe:
        problems.append(f"accesses unsafe attribute(s) {', '.join(unsafe)}, which the sandbox refuses")
    return problems


def schema_problems(schema: Any) -> list[str]:
    """Why ``schema`` is not a usable JSON Schema (draft 2020-12); empty when it is."""
    if schema is None:
        return []
    if not isinstance(schema, dict):
        return ["the response schema must be a JSON object"]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        where = "/".join(str(part) for part in error.path) or "the top level"
        return [f"the response schema is invalid at {where}: {error.message}"]
    return []


def render_body(*, body: str, variables: dict[str, Any], label: str) -> str:
    """Render ``body`` with ``variables``; every failure is a PromptRenderError naming ``label``."""
    try:
        template = _compile(body)
    except TemplateSyntaxError as error:
        raise PromptRenderError(f"prompt {label}: {_syntax_message(error)}")
    budget = Budget(max_chars=settings.PROMPT_RENDER_MAX_CHARS, max_steps=settings.PROMPT_RENDER_MAX_STEPS,
                    max_seconds=settings.PROMPT_RENDER_MAX_SECONDS)
    try:
        return ENVIRONMENT.render_bounded(template, variables, budget)
    except RenderLimitExceeded as error:
        raise PromptRenderError(f"prompt {label}: over the sandbox's limits: {error.message}")
    except RecursionError:
        raise PromptRenderError(f"prompt {label}: recursion too deep (a macro or block that calls itself?)")
    except MemoryError:
        raise PromptRenderError(f"prompt {label}: out of memory")
    except TemplateError as error:
        # UndefinedError (missing variable), SecurityError (sandbox) and other runtime errors.
        raise PromptRenderError(f"prompt {label}: {type(error).__name__}: {error.message or error}")
    except (TypeError, ValueError, ArithmeticError, LookupError, AssertionError) as error:
        # Errors raised by Python operations the body performs on the given data (and by
        # filters that assert their arguments, e.g. truncate's length).
        raise PromptRenderError(f"prompt {label}: {type(error).__name__}: {error}")
