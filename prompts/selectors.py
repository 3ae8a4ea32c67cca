"""Reads of the prompts app."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from prompts.models import PromptTemplate, PromptVersion


def templates_with_versions() -> QuerySet[PromptTemplate]:
    """Every template with its versions (newest first) in two queries."""
    versions = PromptVersion.objects.select_related("created_by").order_by("-number")
    return PromptTemplate.objects.prefetch_related(Prefetch("versions", queryset=versions)).order_by("slug")


def previous_version(*, version: PromptVersion) -> PromptVersion | None:
    return (PromptVersion.objects.filter(template_id=version.template_id, number__lt=version.number)
            .order_by("-number").first())
