"""Read-only pages about what tasks are made of: prompt versions with statistics, and tools."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from tasks.pages.timeline import pretty_json
from tasks.pages.views import page_context


def _admin_url(name: str, *args) -> str | None:
    try:
        return reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return None


def _version_row(version) -> dict:
    rate = version.success_rate
    return {
        "version": version,
        "percent": None if rate is None else round(rate * 100),
        "mean_latency_ms": None if version.mean_latency_ms is None else round(version.mean_latency_ms),
        "mean_tokens_in": None if version.mean_tokens_in is None else round(version.mean_tokens_in),
        "mean_tokens_out": None if version.mean_tokens_out is None else round(version.mean_tokens_out),
        "admin_url": _admin_url("prompts_promptversion_change", version.pk),
    }


@login_required
@require_GET
def prompts_page(request: HttpRequest) -> HttpResponse:
    from prompts.selectors import templates_with_versions

    templates = [
        {
            "template": template,
            "versions": [_version_row(version) for version in template.versions.all()],
            "admin_url": _admin_url("prompts_prompttemplate_change", template.pk),
        }
        for template in templates_with_versions()
    ]
    return render(request, "pages/prompts.html", page_context(templates=templates,
                                                             can_edit=request.user.is_staff))


@login_required
@require_GET
def tools_page(request: HttpRequest) -> HttpResponse:
    from tools.registry import all_tools, disabled_names

    disabled = disabled_names()
    tools = [
        {"spec": spec, "enabled": spec.name not in disabled, "schema_json": pretty_json(spec.parameters)}
        for spec in sorted(all_tools(), key=lambda spec: spec.name)
    ]
    return render(request, "pages/tools.html", page_context(tools=tools))
