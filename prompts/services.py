"""Writes of the prompts app, and rendering of the active version for the orchestrator.

``prompt_render`` and the usage counters are on the hot path of every LLM step: the first is
one indexed query plus a cached compile, the second part of the step's commit. Nothing about
which version is active is cached, so an activation takes effect on the very next call.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from django.db import transaction
from django.db.models import F, Max, OuterRef, Subquery
from django.utils import timezone

from prompts.assignment import choose_version_id
from prompts.density import compact_plain, compact_text
from prompts.errors import PromptNotFound, PromptRenderError, PromptValidationError
from prompts.models import PromptRollout, PromptTemplate, PromptVersion
from prompts.rendering import body_problems, render_body, schema_problems
from prompts.tokens import count_tokens

_UNSET: Any = object()


@dataclass(frozen=True)
class RenderedPrompt:
    version_id: int
    label: str
    text: str
    response_schema: dict | None
    temperature: float | None
    max_tokens: int | None

    @cached_property
    def tokens(self) -> int:
        """o200k tokens of the text, counted on first use: the orchestrator renders on every
        LLM step and does not need the count, which costs more than the rendering itself."""
        return count_tokens(self.text)


def active_version(*, slug: str) -> PromptVersion:
    """The active version of ``slug`` with its template, in one query."""
    version = (PromptVersion.objects.select_related("template")
               .filter(template__slug=slug, is_active=True).first())
    if version is None:
        if PromptTemplate.objects.filter(slug=slug).exists():
            raise PromptNotFound(f"prompt {slug}: no active version; activate one in the admin")
        raise PromptNotFound(f"prompt {slug}: no such template")
    return version


@lru_cache(maxsize=256)
def _version_with_template(version_id: int, template_stamp: str) -> PromptVersion:
    return PromptVersion.objects.select_related("template").get(pk=version_id)


def version_cached(*, version_id: int, template_stamp: str) -> PromptVersion:
    """Version ``version_id`` with its template, kept per process (256 entries).

    For callers that already know which version is active (the orchestrator reads the
    active ids when a slice starts) and want no query per use. A version's content never
    changes (immutable); its template's schema and variables can, so the key includes the
    template's ``updated_at`` (``template_stamp``, any text that changes with it): an edit
    in the admin gives a new key, never a stale entry. The instance is shared: read it only.
    """
    try:
        return _version_with_template(version_id, template_stamp)
    except PromptVersion.DoesNotExist:
        raise PromptNotFound(f"prompt version {version_id}: no such version") from None


def prompt_version_for_task(*, slug: str, task_id: object) -> PromptVersion:
    """The version of ``slug`` that task ``task_id`` uses: the active one, or the candidate
    of a running rollout for the rollout's share of task ids (prompts.assignment). One query
    (two when the task falls in the candidate's share)."""
    running = PromptRollout.objects.filter(template_id=OuterRef("template_id"), status=PromptRollout.Status.RUNNING)
    version = (PromptVersion.objects.select_related("template").filter(template__slug=slug, is_active=True)
               .annotate(rollout_candidate=Subquery(running.values("candidate_id")[:1]),
                         rollout_weight=Subquery(running.values("weight")[:1])).first())
    if version is None:
        return active_version(slug=slug)  # raises PromptNotFound with the precise reason
    chosen = choose_version_id(slug=slug, task_id=task_id, active_id=version.pk,
                               candidate_id=version.rollout_candidate, weight=version.rollout_weight)
    if chosen == version.pk:
        return version
    return PromptVersion.objects.select_related("template").get(pk=chosen)


def running_rollouts() -> dict[str, tuple[int, float]]:
    """slug -> (candidate version id, weight in percent) of every running rollout, in one
    query: what a runner reads with its other per-slice lookups to call
    :func:`prompt_version_for_task_cached` without a query per LLM step."""
    rows = PromptRollout.objects.filter(status=PromptRollout.Status.RUNNING).values_list(
        "template__slug", "candidate_id", "weight")
    return {slug: (candidate_id, weight) for slug, candidate_id, weight in rows}


def prompt_version_for_task_cached(*, slug: str, task_id: object, active_id: int, template_stamp: str,
                                   candidate_id: int | None = None, weight: float | None = None) -> PromptVersion:
    """:func:`prompt_version_for_task` for callers that already hold the active version id,
    the template stamp and the running rollout (``running_rollouts()``): no query once the
    chosen version is in the process's cache (see :func:`version_cached`)."""
    chosen = choose_version_id(slug=slug, task_id=task_id, active_id=active_id, candidate_id=candidate_id,
                               weight=weight)
    return version_cached(version_id=chosen, template_stamp=template_stamp)


def _render(version: PromptVersion, variables: dict[str, Any]) -> str:
    missing = sorted(set(version.template.required_variables or []) - set(variables))
    if missing:
        raise PromptRenderError(f"prompt {version.label}: missing required variable(s) {', '.join(missing)}")
    return render_body(body=version.body, variables=variables, label=version.label)


def prompt_version_render(*, version: PromptVersion, variables: dict[str, Any]) -> RenderedPrompt:
    """Render a given version (active or not); see prompt_render."""
    # Density: whitespace runs and repeated separators cost tokens and say nothing.
    text = compact_plain(_render(version, variables))
    return RenderedPrompt(version_id=version.pk, label=version.label, text=text,
                          response_schema=version.template.response_schema, temperature=version.temperature,
                          max_tokens=version.max_tokens)


def prompt_version_preview(*, version: PromptVersion, variables: dict[str, Any]) -> tuple[str, int, int]:
    """(rendered text, tokens before compaction, tokens after) for the admin preview."""
    return compact_text(_render(version, variables))


def prompt_render(*, slug: str, variables: dict[str, Any]) -> RenderedPrompt:
    """Render the ACTIVE version of template ``slug``. Raises PromptNotFound / PromptRenderError."""
    return prompt_version_render(version=active_version(slug=slug), variables=variables)


def prompt_version_use_increments(*, success: bool, tokens_in: int, tokens_out: int,
                                  latency_ms: int) -> dict[str, int]:
    """What one LLM call driven by a version adds to its counters (field name -> increment).

    The one definition of a use: ``prompt_version_record_use`` applies it with F()
    expressions, and the step store (tasks/store.py) in the statement that commits the step.
    """
    if min(tokens_in, tokens_out, latency_ms) < 0:
        raise ValueError("tokens_in, tokens_out and latency_ms must not be negative")
    return {"uses": 1, "successes": int(success), "failures": int(not success), "tokens_in_total": tokens_in,
            "tokens_out_total": tokens_out, "latency_ms_total": latency_ms}


def prompt_version_record_use(*, version_id: int, success: bool, tokens_in: int, tokens_out: int,
                              latency_ms: int) -> None:
    """Count one LLM call driven by a version.

    One UPDATE with F() expressions: PostgreSQL locks the row for the increment, so
    concurrent workers never lose a count (no read-modify-write in Python).
    """
    increments = prompt_version_use_increments(success=success, tokens_in=tokens_in, tokens_out=tokens_out,
                                               latency_ms=latency_ms)
    updated = PromptVersion.objects.filter(pk=version_id).update(
        **{name: F(name) + value for name, value in increments.items()})
    if not updated:
        raise PromptNotFound(f"prompt version {version_id}: no such version")
    # A candidate's new figures may cross its rollout's stop threshold (one indexed query
    # when the version is no candidate). The beat job prompts.check_rollouts covers counts
    # written elsewhere.
    from prompts.rollouts import prompt_rollouts_check_candidate

    prompt_rollouts_check_candidate(version_id=version_id)


def validate_version_content(*, template: PromptTemplate, body: str, label: str) -> None:
    problems = body_problems(body, declared=template.declared_variables)
    if problems:
        raise PromptValidationError(f"prompt {label}: " + "; ".join(problems), problems=problems, field="body")


def validate_template_content(*, slug: str, response_schema: dict | None) -> None:
    problems = schema_problems(response_schema)
    if problems:
        raise PromptValidationError(f"prompt {slug}: " + "; ".join(problems), problems=problems,
                                    field="response_schema")


def prompt_template_create(*, slug: str, description: str = "", response_schema: dict | None = None,
                           required_variables: list[str] | None = None,
                           optional_variables: list[str] | None = None,
                           sample_variables: dict | None = None) -> PromptTemplate:
    validate_template_content(slug=slug, response_schema=response_schema)
    return PromptTemplate.objects.create(
        slug=slug, description=description, response_schema=response_schema,
        required_variables=list(required_variables or []), optional_variables=list(optional_variables or []),
        sample_variables=dict(sample_variables or {}))


@transaction.atomic
def prompt_version_create(*, template: PromptTemplate, body: str, temperature: float | None = None,
                          max_tokens: int | None = None, note: str = "", created_by=None,
                          origin: str = PromptVersion.Origin.USER, activate: bool = False) -> PromptVersion:
    """Add the next version of ``template`` (validated); optionally make it the active one."""
    # The template row lock serialises numbering and activation for this template.
    locked = PromptTemplate.objects.select_for_update().get(pk=template.pk)
    number = (locked.versions.aggregate(top=Max("number"))["top"] or 0) + 1
    validate_version_content(template=locked, body=body, label=f"{locked.slug}@{number}")
    version = PromptVersion.objects.create(
        template=locked, number=number, body=body, temperature=temperature, max_tokens=max_tokens,
        note=note, created_by=created_by, origin=origin)
    if activate:
        _activate_locked(version)
    if created_by is not None:  # a person's edit (the shipped defaults have no author)
        _audit(created_by, "prompt.version.create", version, after={"label": version.label, "active": activate})
    return version


def _audit(actor, action: str, version: PromptVersion, **states) -> None:
    from workspaces.audit import audit_record

    # Prompts are shared by every workspace: their events belong to none.
    audit_record(actor=actor, action=action, target_type="prompt_version", target_id=version.pk, **states)


def prompt_version_edit(*, version: PromptVersion, body: str = _UNSET, temperature: float | None = _UNSET,
                        max_tokens: int | None = _UNSET, note: str = _UNSET,
                        edited_by=None) -> tuple[PromptVersion, bool]:
    """Change a version. An unused version changes in place; a used one is immutable, so a
    change to its body or parameters becomes the next version (inactive) while a change to
    the note alone stays in place. Returns (version, created)."""
    with transaction.atomic():
        PromptTemplate.objects.select_for_update().filter(pk=version.template_id).first()
        current = PromptVersion.objects.select_related("template").get(pk=version.pk)
        changes = {"body": body, "temperature": temperature, "max_tokens": max_tokens, "note": note}
        changes = {name: value for name, value in changes.items() if value is not _UNSET}
        content_changed = any(name in changes and changes[name] != getattr(current, name)
                              for name in ("body", "temperature", "max_tokens"))
        if not current.used or not content_changed:
            validate_version_content(template=current.template, body=changes.get("body", current.body),
                                     label=current.label)
            before = {name: getattr(current, name) for name in changes if changes[name] != getattr(current, name)}
            for name, value in changes.items():
                setattr(current, name, value)
            current.save()
            if content_changed:
                # Processes keep versions keyed by their template's updated_at (version_cached):
                # a new stamp, so none of them goes on rendering the old content.
                PromptTemplate.objects.filter(pk=current.template_id).update(updated_at=timezone.now())
            if edited_by is not None and before:
                _audit(edited_by, "prompt.version.edit", current, before=before,
                       after={name: changes[name] for name in before})
            return current, False
        content = {name: changes.get(name, getattr(current, name)) for name in ("body", "temperature", "max_tokens")}
        note_text = changes.get("note") or f"Edited from version {current.number}"
        new = prompt_version_create(template=current.template, note=note_text, created_by=edited_by, **content)
        return new, True


def _activate_locked(version: PromptVersion) -> None:
    # A running rollout compares a candidate with the version active when it began: once
    # another version is active its figures mean nothing, so it ends here.
    running = PromptRollout.objects.filter(template_id=version.template_id, status=PromptRollout.Status.RUNNING)
    running.filter(candidate_id=version.pk).update(status=PromptRollout.Status.PROMOTED, ended_at=timezone.now(),
                                                   stop_reason=f"version {version.number} was activated")
    running.exclude(active_version_id=version.pk).update(status=PromptRollout.Status.STOPPED, ended_at=timezone.now(),
                   stop_reason=f"version {version.number} was activated instead")
    # Deactivate first: the partial unique index allows only one active row at any moment.
    PromptVersion.objects.filter(template_id=version.template_id, is_active=True).exclude(pk=version.pk).update(
        is_active=False)
    PromptVersion.objects.filter(pk=version.pk).update(is_active=True)
    version.is_active = True


@transaction.atomic
def prompt_version_activate(*, version: PromptVersion, actor=None) -> PromptVersion:
    """Make ``version`` its template's only active version (one transaction); audited when
    ``actor`` (who activated it) is given."""
    PromptTemplate.objects.select_for_update().filter(pk=version.template_id).first()
    before = (PromptVersion.objects.filter(template_id=version.template_id, is_active=True)
              .values_list("number", flat=True).first())
    _activate_locked(version)
    if actor is not None:
        _audit(actor, "prompt.version.activate", version, before={"active_number": before},
               after={"active_number": version.number, "label": version.label})
    return version
