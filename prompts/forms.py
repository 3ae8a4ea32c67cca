"""Admin forms: a body or schema that would fail at run time is refused at save time."""

from __future__ import annotations

import re

from django import forms
from django.forms.models import BaseInlineFormSet

from prompts.models import PromptTemplate, PromptVersion
from prompts.rendering import body_problems, schema_problems

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_variable_list(value) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) and _IDENTIFIER.match(item) for item in value):
        raise forms.ValidationError('Enter a JSON list of variable names, e.g. ["query", "tools"].')
    return value


class PromptTemplateForm(forms.ModelForm):
    class Meta:
        model = PromptTemplate
        fields = ["slug", "description", "required_variables", "optional_variables", "response_schema",
                  "sample_variables"]

    def clean_required_variables(self) -> list[str]:
        return _check_variable_list(self.cleaned_data.get("required_variables"))

    def clean_optional_variables(self) -> list[str]:
        return _check_variable_list(self.cleaned_data.get("optional_variables"))

    def clean_response_schema(self):
        schema = self.cleaned_data.get("response_schema")
        problems = schema_problems(schema)
        if problems:
            raise forms.ValidationError(problems)
        return schema

    def clean_sample_variables(self):
        sample = self.cleaned_data.get("sample_variables")
        if sample in (None, ""):
            return {}
        if not isinstance(sample, dict):
            raise forms.ValidationError("Enter a JSON object of sample variables.")
        return sample


def _label(template: PromptTemplate | None, version: PromptVersion | None) -> str:
    slug = template.slug if template else "?"
    number = version.number if version is not None and version.pk else "new"
    return f"{slug}@{number}"


class PromptVersionForm(forms.ModelForm):
    """Used by the version admin; the template admin's inline formset checks bodies itself
    against the variables as posted on the template form."""

    check_body = True

    class Meta:
        model = PromptVersion
        fields = ["template", "body", "temperature", "max_tokens", "note"]
        widgets = {"body": forms.Textarea(attrs={"rows": 24, "cols": 100, "style": "font-family: monospace"})}

    def _template(self) -> PromptTemplate | None:
        template = self.cleaned_data.get("template")
        if template is None and self.instance.template_id:
            template = self.instance.template
        return template

    def clean(self):
        cleaned = super().clean()
        template = self._template()
        body = cleaned.get("body")
        if self.check_body and template is not None and body is not None:
            problems = body_problems(body, declared=template.declared_variables)
            if problems:
                label = _label(template, self.instance)
                self.add_error("body", [f"prompt {label}: {problem}" for problem in problems])
        return cleaned


class PromptVersionInlineForm(PromptVersionForm):
    check_body = False

    class Meta(PromptVersionForm.Meta):
        fields = ["body", "temperature", "max_tokens", "note"]
        widgets = {"body": forms.Textarea(attrs={"rows": 12, "cols": 100, "style": "font-family: monospace"})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.used:
            # A used version is immutable; it is edited from its own page (making N+1).
            for field in self.fields.values():
                field.disabled = True


class PromptVersionInlineFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        # Validate every version against the variables as posted on the parent form, so
        # narrowing the declared variables cannot orphan a version's references.
        declared = self.instance.declared_variables
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or form in self.deleted_forms:
                continue
            body = form.cleaned_data.get("body") or (form.instance.body if form.instance.pk else None)
            if not body or form.has_error("body"):
                continue
            problems = body_problems(body, declared=declared)
            if problems:
                label = _label(self.instance, form.instance)
                form.add_error("body" if not form.fields["body"].disabled else None,
                               [f"prompt {label}: {problem}" for problem in problems])
