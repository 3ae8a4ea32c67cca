"""Admin of prompt rollouts: start one (a candidate version and its weight), watch each
arm's figures (schema success, feedback, tokens, latency), promote or stop it. Every write
goes through prompts.rollouts."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from agentos.api import ApplicationError
from prompts.models import PromptRollout, PromptVersion
from prompts.rollouts import (
    Arm,
    prompt_rollout_promote,
    prompt_rollout_start,
    prompt_rollout_stop,
    rollout_arms,
    rollout_feedback,
    rollout_start_problem,
)


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _mean(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


class RolloutStartForm(forms.ModelForm):
    class Meta:
        model = PromptRollout
        fields = ["candidate", "weight", "min_uses", "failure_margin"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["candidate"].queryset = PromptVersion.objects.select_related("template").filter(is_active=False)
        self.fields["min_uses"].required = self.fields["failure_margin"].required = False
        self.fields["min_uses"].help_text += " Empty: PROMPT_ROLLOUT_MIN_USES."
        self.fields["failure_margin"].help_text += " Empty: PROMPT_ROLLOUT_FAILURE_MARGIN."

    def clean(self):
        data = super().clean()
        if data.get("candidate") and data.get("weight") is not None:
            problem = rollout_start_problem(candidate=data["candidate"], weight=data["weight"],
                                            failure_margin=data.get("failure_margin"), min_uses=data.get("min_uses"))
            if problem:
                raise forms.ValidationError({problem[0]: problem[1]})
        return data


@admin.register(PromptRollout)
class PromptRolloutAdmin(admin.ModelAdmin):
    list_display = ["template", "candidate", "weight_display", "status", "active_arm", "candidate_arm", "started_at",
                    "ended_at"]
    list_filter = ["status", "template"]
    list_select_related = ["template", "candidate__template", "active_version__template"]
    actions = ["promote_selected", "stop_selected"]
    readonly_fields = ["template", "active_version", "candidate", "weight", "min_uses", "failure_margin", "status",
                       "arms", "stop_reason", "stop_numbers", "started_by", "started_at", "ended_at"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = RolloutStartForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else []

    def get_fields(self, request, obj=None):
        return self.readonly_fields if obj else RolloutStartForm.Meta.fields

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the record of a rollout (and of why it stopped) is history

    def save_model(self, request, obj: PromptRollout, form, change: bool) -> None:
        data = form.cleaned_data  # validated by RolloutStartForm.clean with the service's own rules
        saved = prompt_rollout_start(candidate=data["candidate"], weight=data["weight"],
                                     min_uses=data.get("min_uses"), failure_margin=data.get("failure_margin"),
                                     started_by=request.user)
        for model_field in obj._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(saved, model_field.attname))
        obj._state.adding = False

    @admin.display(description="weight")
    def weight_display(self, rollout: PromptRollout) -> str:
        return f"{rollout.weight:g} %"

    def _arm_line(self, arm: Arm) -> str:
        return (f"{arm.label}: {arm.uses} uses · success {_rate(arm.success_rate)} · failures "
                f"{_rate(arm.failure_rate)} · {_mean(arm.mean(arm.tokens_in_total + arm.tokens_out_total))} tokens · "
                f"{_mean(arm.mean(arm.latency_ms_total))} ms")

    @admin.display(description="active arm")
    def active_arm(self, rollout: PromptRollout) -> str:
        return self._arm_line(rollout_arms(rollout=rollout)["active"])

    @admin.display(description="candidate arm")
    def candidate_arm(self, rollout: PromptRollout) -> str:
        return self._arm_line(rollout_arms(rollout=rollout)["candidate"])

    @admin.display(description="arms since the start")
    def arms(self, rollout: PromptRollout) -> str:
        feedback = rollout_feedback(rollout=rollout)
        rows = []
        for name, arm in rollout_arms(rollout=rollout).items():
            votes = feedback.get(arm.label, {"up": 0, "down": 0})
            rows.append((name, self._arm_line(arm), votes["up"], votes["down"]))
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}: {} · 👍 {} · 👎 {}</li>", rows))

    @admin.action(description="Promote the candidate (make it the active version)")
    def promote_selected(self, request, queryset) -> None:
        self._each(request, queryset, lambda rollout: prompt_rollout_promote(rollout=rollout, by=request.user),
                   "Promoted")

    @admin.action(description="Stop the rollout (every task back on the active version)")
    def stop_selected(self, request, queryset) -> None:
        self._each(request, queryset, lambda rollout: prompt_rollout_stop(rollout=rollout, by=request.user),
                   "Stopped")

    def _each(self, request, queryset, action, verb: str) -> None:
        done = []
        for rollout in queryset.select_related("candidate__template"):
            try:
                action(rollout)
            except ApplicationError as error:
                self.message_user(request, f"{rollout.candidate.label}: {error.message}", messages.ERROR)
            else:
                done.append(rollout.candidate.label)
        if done:
            self.message_user(request, f"{verb} " + ", ".join(done) + ".", messages.SUCCESS)
