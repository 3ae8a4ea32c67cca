"""Admin forms: a webhook's template is checked on save; a schedule is edited as minutes or crontab.

Options and a schedule's query follow the rules of the workspace admins' API and page
(triggers.editing), so staff cannot save what a run would refuse."""

from __future__ import annotations

from django import forms

from agentos.api import ApplicationError
from triggers import editing
from triggers.errors import InvalidSchedule
from triggers.models import ScheduledQuery, Webhook
from triggers.schedules import INTERVAL_MAX_MINUTES, parse_crontab


def _form_error(error: ApplicationError, field: str) -> forms.ValidationError:
    """The API's error as a form field's: its message, led by the part it names (``options.step_budget``)."""
    named = error.field if error.field and error.field != field else None
    return forms.ValidationError(f"{named}: {error.message}" if named else error.message)


def _clean_options(value) -> dict:
    try:
        return editing.clean_options(value)
    except ApplicationError as error:
        raise _form_error(error, "options") from None


def _callback_url_allowed(value: str) -> None:
    """The delivery rules, checked on save (tasks.options.callback_url_problem)."""
    from tasks.options import callback_url_problem

    problem = callback_url_problem(value) if value else None
    if problem:
        raise forms.ValidationError(f"This callback URL is not allowed: {problem}.")


def _callback_url_field() -> forms.URLField:
    return forms.URLField(required=False, max_length=500, assume_scheme="https", validators=[_callback_url_allowed],
                          help_text="Optional: receives task.completed / task.failed / task.waiting_human events.")


class WebhookForm(forms.ModelForm):
    callback_url = _callback_url_field()

    class Meta:
        model = Webhook
        fields = ["name", "owner", "enabled", "query_template", "options", "callback_url"]

    def clean_options(self) -> dict:
        return _clean_options(self.cleaned_data.get("options"))

    def clean_query_template(self) -> str:
        from triggers.validation import query_template_problem

        body = self.cleaned_data.get("query_template") or ""
        problem = query_template_problem(body)
        if problem:
            raise forms.ValidationError(problem)
        return body


class ScheduledQueryForm(forms.ModelForm):
    callback_url = _callback_url_field()
    interval_minutes = forms.IntegerField(
        required=False, min_value=1, max_value=INTERVAL_MAX_MINUTES, label="Every (minutes)",
        help_text="Run every N minutes (at most a year). Leave empty when using a crontab expression.")
    crontab = forms.CharField(
        required=False, max_length=editing.CRONTAB_MAX, label="Crontab (UTC)",
        help_text='Five fields: minute hour day-of-month month day-of-week, e.g. "0 8 * * mon-fri". '
                  "Leave empty when using an interval.")

    class Meta:
        model = ScheduledQuery
        fields = ["name", "owner", "query", "enabled", "options", "callback_url"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        entry = self.instance.periodic_task if self.instance.pk else None
        if entry is not None and entry.interval_id and entry.interval.period == "minutes":
            self.fields["interval_minutes"].initial = entry.interval.every
        elif entry is not None and entry.crontab_id:
            cron = entry.crontab
            self.fields["crontab"].initial = " ".join(
                [cron.minute, cron.hour, cron.day_of_month, cron.month_of_year, cron.day_of_week])

    def clean_options(self) -> dict:
        return _clean_options(self.cleaned_data.get("options"))

    def clean_query(self) -> str:
        try:
            return editing.clean_query(self.cleaned_data.get("query"))
        except ApplicationError as error:
            raise _form_error(error, "query") from None

    def clean(self) -> dict:
        cleaned = super().clean()
        minutes, crontab = cleaned.get("interval_minutes"), (cleaned.get("crontab") or "").strip()
        if bool(minutes) == bool(crontab):
            raise forms.ValidationError("Give either an interval in minutes or a crontab expression, not both.")
        if crontab:
            try:
                parse_crontab(crontab)
            except InvalidSchedule as error:
                self.add_error("crontab", error.message)
        self._check_name_in_workspace(cleaned)
        return cleaned

    def _check_name_in_workspace(self, cleaned: dict) -> None:
        """Names are unique per workspace, which this form does not show: the schedule's own,
        or (a new one) its owner's default workspace, where it will be saved."""
        from workspaces.access import default_workspace

        name, owner = cleaned.get("name"), cleaned.get("owner")
        workspace_id = self.instance.workspace_id or (default_workspace(owner).pk if owner else None)
        if name and workspace_id:
            taken = ScheduledQuery.objects.filter(workspace_id=workspace_id, name=name).exclude(pk=self.instance.pk)
            if taken.exists():
                self.add_error("name", "This workspace already has a schedule with this name.")
