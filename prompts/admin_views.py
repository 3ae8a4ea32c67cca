"""Custom admin pages of a prompt version: preview with sample variables, diff against the
previous version, and a one-click activation. Reached through PromptVersionAdmin.get_urls,
which wraps them in admin_site.admin_view (staff, or prompt editors on the prompt editors'
site, prompts/admin_editors.py)."""

from __future__ import annotations

import difflib
import json

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views import View

from agentos.jsonguard import JSONRejected, parse_json
from prompts.errors import PromptError
from prompts.models import PromptVersion
from prompts.selectors import previous_version
from prompts.services import prompt_version_activate, prompt_version_preview


class _VersionView(View):
    model_admin = None

    def get_version(self, pk: int) -> PromptVersion:
        return get_object_or_404(PromptVersion.objects.select_related("template"), pk=pk)

    def context(self, request: HttpRequest, version: PromptVersion, title: str) -> dict:
        request.current_app = self.model_admin.admin_site.name  # the template's admin: links stay on this site
        return {
            **self.model_admin.admin_site.each_context(request),
            "opts": PromptVersion._meta,
            "original": version,
            "version": version,
            "title": title,
            "change_url": reverse("admin:prompts_promptversion_change", args=[version.pk],
                                  current_app=self.model_admin.admin_site.name),
        }


def _parse_variables(raw: str) -> tuple[dict | None, str | None]:
    try:
        variables = parse_json(raw or "{}")  # nesting too deep for json.loads is a message here, not a 500
    except JSONRejected as error:
        if error.code == "parse_error":
            return None, f"The sample variables are not valid JSON: {error.detail or error.message}."
        return None, f"The sample variables are refused: {error.message}"
    if not isinstance(variables, dict):
        return None, "The sample variables must be a JSON object, e.g. {\"query\": \"...\"}."
    return variables, None


class PreviewView(_VersionView):
    """Render a version with sample variables; show the text and its token counts."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = self.get_version(pk)
        sample = json.dumps(version.template.sample_variables or {}, indent=2, ensure_ascii=False)
        return self.show(request, version, sample)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = self.get_version(pk)
        raw = request.POST.get("variables", "")
        variables, error = _parse_variables(raw)
        result = None
        if variables is not None:
            try:
                text, tokens_before, tokens_after = prompt_version_preview(version=version, variables=variables)
                result = {"text": text, "tokens_before": tokens_before, "tokens_after": tokens_after}
            except PromptError as problem:
                error = problem.message
        return self.show(request, version, raw, result=result, error=error)

    def show(self, request, version, raw, *, result=None, error=None) -> HttpResponse:
        context = self.context(request, version, f"Preview {version.label}")
        context.update(variables=raw, result=result, error=error)
        return TemplateResponse(request, "admin/prompts/promptversion/preview.html", context)


class DiffView(_VersionView):
    """Unified diff of a version's body against the previous version's; the template escapes it."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = self.get_version(pk)
        previous = previous_version(version=version)
        lines = []
        if previous is not None:
            diff = difflib.unified_diff(previous.body.splitlines(), version.body.splitlines(),
                                        fromfile=previous.label, tofile=version.label, lineterm="")
            for line in diff:
                kind = ("meta" if line.startswith(("---", "+++", "@@")) else
                        "added" if line.startswith("+") else "removed" if line.startswith("-") else "same")
                lines.append({"kind": kind, "text": line})
        parameters = []
        if previous is not None:
            for name in ("temperature", "max_tokens"):
                before, after = getattr(previous, name), getattr(version, name)
                if before != after:
                    parameters.append({"name": name, "before": before, "after": after})
        context = self.context(request, version, f"Diff {version.label}")
        context.update(previous=previous, lines=lines, parameters=parameters)
        return TemplateResponse(request, "admin/prompts/promptversion/diff.html", context)


class ActivateView(_VersionView):
    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = prompt_version_activate(version=self.get_version(pk), actor=request.user)
        messages.success(request, f"{version.label} is now the active version of {version.template.slug}.")
        return HttpResponseRedirect(reverse("admin:prompts_promptversion_change", args=[version.pk],
                                            current_app=self.model_admin.admin_site.name))
