"""Forms of the pages: a new task, and a person's answer to a waiting task."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from tasks.models import AgentSpec, TaskStatus

MIN_STEP_BUDGET = 5
MAX_STEP_BUDGET = 1000


class NewTaskForm(forms.Form):
    query = forms.CharField(
        label=_("What should the agents do?"),
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": _("e.g. Research the history of the metric system "
                                                                 "and compute 12 * 7")}),
        max_length=settings.QUERY_MAX_LENGTH,
        strip=True,
    )
    agent = forms.ChoiceField(label=_("Agent"), required=False)
    step_budget = forms.IntegerField(
        label=_("Step budget"), required=False, min_value=MIN_STEP_BUDGET, max_value=MAX_STEP_BUDGET,
        help_text=_("Model and tool calls the task may make (default %(default)s).")
        % {"default": settings.TASK_STEP_BUDGET},
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        names = AgentSpec.objects.filter(enabled=True).order_by("name").values_list("name", flat=True)
        self.fields["agent"].choices = [("", _("Any (the planner chooses)"))] + [(name, name) for name in names]

    def options(self) -> dict:
        """The task options this form asks for (only the ones the user set)."""
        options: dict = {}
        if self.cleaned_data.get("agent"):
            options["agents"] = [self.cleaned_data["agent"]]
        if self.cleaned_data.get("step_budget"):
            options["step_budget"] = self.cleaned_data["step_budget"]
        return options


class RespondForm(forms.Form):
    """An answer to a question, or a decision on a tool call waiting for approval."""

    answer = forms.CharField(label=_("Your answer"), required=False, max_length=settings.QUERY_MAX_LENGTH,
                             widget=forms.Textarea(attrs={"rows": 2}))
    # A suggested answer clicked as a button (the textarea is submitted with it, maybe empty).
    choice = forms.CharField(required=False, max_length=settings.QUERY_MAX_LENGTH)
    decision = forms.ChoiceField(choices=[("approve", _("Approve")), ("deny", _("Deny"))], required=False)
    comment = forms.CharField(label=_("Comment (optional)"), required=False, max_length=2000)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("choice"):
            data["answer"] = data["choice"]
        if not data.get("decision") and not data.get("answer"):
            raise forms.ValidationError(_("Write an answer first."))
        return data


STATUS_FILTERS = [
    ("", _("All")),
    (TaskStatus.QUEUED, _("Queued")),
    (TaskStatus.RUNNING, _("Running")),
    (TaskStatus.PAUSED, _("Paused")),
    (TaskStatus.WAITING_HUMAN, _("Waiting for you")),
    (TaskStatus.WAITING_PROVIDER, _("Waiting for the model provider")),
    (TaskStatus.COMPLETED, _("Completed")),
    (TaskStatus.FAILED, _("Failed")),
    (TaskStatus.CANCELLED, _("Cancelled")),
]
STATUS_LABELS = dict(STATUS_FILTERS[1:])
