"""A workspace's admins create, change and delete its webhooks and schedules.

The REST API (triggers/api.py) and the workspaces page call these; staff keep the admin's
forms (audited with the same actions and state, triggers/admin.py). Each change checks the
caller's role (admin of the workspace), applies the same rules as the admin's forms
(triggers.validation, the callback URL rules of tasks.options, the agent options of a task,
Celery's crontab parser) and writes exactly one audit row in the same transaction. A
webhook's secret comes from ``triggers.models.generate_secret`` (on creation) and
``triggers.services.webhook_rotate_secret``; it is returned by the call that makes it and
never written to the audit log.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction

from agentos.api import ApplicationError, NotFound
from agentos.logfilters import REDACTED, redact
from triggers.models import ScheduledQuery, Webhook
from triggers.schedules import INTERVAL_MAX_MINUTES, describe, scheduled_query_save
from triggers.selectors import schedule_pk, schedule_timing
from triggers.validation import query_template_problem
from workspaces.access import require_role
from workspaces.audit import audit_record
from workspaces.models import Role

NAME_MAX = 100
URL_MAX = 500
CRONTAB_MAX = 120
WEBHOOK_FIELDS = ("name", "enabled", "query_template", "options", "callback_url")
SCHEDULE_FIELDS = ("name", "query", "enabled", "options", "callback_url", "interval_minutes", "crontab")
# Who may change a workspace's webhooks and schedules (triggers.selectors.READ_ROLE: who may read them).
WRITE_ROLE = Role.ADMIN


def webhook_state(webhook: Webhook) -> dict[str, Any]:
    """What the audit log keeps of a webhook: its settings, never its secret."""
    return {"name": webhook.name, "enabled": webhook.enabled, "owner": webhook.owner.get_username(),
            "query_template": webhook.query_template, "options": webhook.options,
            "callback_url": redact(webhook.callback_url), "secret": REDACTED}


def schedule_state(schedule: ScheduledQuery) -> dict[str, Any]:
    return {"name": schedule.name, "enabled": schedule.enabled, "owner": schedule.owner.get_username(),
            "query": schedule.query, "options": schedule.options, "callback_url": redact(schedule.callback_url),
            **schedule_timing(schedule), "schedule": describe(schedule)}


# --- input rules -----------------------------------------------------------------------------

def _text(data: dict, field: str, *, max_length: int | None = None, required: bool = False) -> str:
    value = data[field]
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ApplicationError(f"{field} must be a string", field=field)
    value = value.strip()
    if required and not value:
        raise ApplicationError(f"{field} may not be empty", field=field)
    if max_length is not None and len(value) > max_length:
        raise ApplicationError(f"{field} is longer than {max_length} characters", field=field)
    return value


def _callback_url(data: dict) -> str:
    from tasks.options import callback_url_problem

    url = _text(data, "callback_url", max_length=URL_MAX)
    if not url:
        return ""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ApplicationError("callback_url must be an http or https URL", field="callback_url") from None
    problem = callback_url_problem(url)
    if problem:
        raise ApplicationError(f"This callback URL is not allowed: {problem}.", field="callback_url",
                               code="url_not_allowed")
    return url


def clean_options(value) -> dict:
    """A webhook's or schedule's agent options, by the rules of a task's options
    (tasks.options.clean_task_options); ApplicationError naming ``options`` or ``options.<key>``.
    The admin's forms use it too (triggers/forms.py)."""
    from tasks.options import clean_task_options

    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ApplicationError('options must be a JSON object, e.g. {"allow_human": false}', field="options")
    return clean_task_options(value)


def clean_query(value) -> str:
    """A schedule's query: text, not empty, at most QUERY_MAX_LENGTH characters once stripped
    (what task_create will accept at each run). The admin's form uses it too."""
    from django.conf import settings

    return _text({"query": value}, "query", max_length=settings.QUERY_MAX_LENGTH, required=True)


def _options(data: dict) -> dict:
    return clean_options(data["options"])


def _enabled(data: dict) -> bool:
    if not isinstance(data["enabled"], bool):
        raise ApplicationError("enabled must be true or false", field="enabled")
    return data["enabled"]


def _object(data) -> None:
    """A mapping of storable values (pages send raw form text, which no JSON parser has seen)."""
    from agentos.jsonguard import JSONRejected, check_value

    if not isinstance(data, dict):
        raise ApplicationError("the body must be a JSON object")
    try:
        check_value(data)
    except JSONRejected as error:
        raise ApplicationError(error.message, field=error.field, code=error.code) from None


def _unknown(data: dict, known: tuple[str, ...]) -> None:
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ApplicationError(f"unknown field; known fields are {', '.join(known)}", field=unknown[0])


def _clean_webhook(data: dict, *, partial: bool) -> dict[str, Any]:
    _object(data)
    _unknown(data, WEBHOOK_FIELDS)
    if not partial and "name" not in data:
        raise ApplicationError("name is required", field="name", code="required")
    cleaned: dict[str, Any] = {}
    if "name" in data:
        cleaned["name"] = _text(data, "name", max_length=NAME_MAX, required=True)
    if "enabled" in data:
        cleaned["enabled"] = _enabled(data)
    if "query_template" in data:
        template = data["query_template"] if data["query_template"] is not None else ""
        if not isinstance(template, str):
            raise ApplicationError("query_template must be a string", field="query_template")
        problem = query_template_problem(template)
        if problem:
            raise ApplicationError(problem, field="query_template", code="template_error")
        cleaned["query_template"] = template
    if "options" in data:
        cleaned["options"] = _options(data)
    if "callback_url" in data:
        cleaned["callback_url"] = _callback_url(data)
    return cleaned


def _interval(data: dict) -> int | None:
    value = data.get("interval_minutes")
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApplicationError("interval_minutes must be a whole number of minutes", field="interval_minutes")
    if value < 1:
        raise ApplicationError("the interval must be at least one minute", field="interval_minutes")
    if value > INTERVAL_MAX_MINUTES:
        raise ApplicationError(f"the interval must be at most a year ({INTERVAL_MAX_MINUTES} minutes)",
                               field="interval_minutes")
    return value


def _clean_schedule(data: dict, *, partial: bool) -> dict[str, Any]:
    _object(data)
    _unknown(data, SCHEDULE_FIELDS)
    if not partial:
        for field in ("name", "query"):
            if field not in data:
                raise ApplicationError(f"{field} is required", field=field, code="required")
        if "interval_minutes" not in data and "crontab" not in data:
            raise ApplicationError("give either an interval in minutes or a crontab expression",
                                   field="interval_minutes", code="invalid_schedule")
    cleaned: dict[str, Any] = {}
    if "name" in data:
        cleaned["name"] = _text(data, "name", max_length=NAME_MAX, required=True)
    if "query" in data:
        cleaned["query"] = clean_query(data["query"])
    if "enabled" in data:
        cleaned["enabled"] = _enabled(data)
    if "options" in data:
        cleaned["options"] = _options(data)
    if "callback_url" in data:
        cleaned["callback_url"] = _callback_url(data)
    if "interval_minutes" in data or "crontab" in data:
        cleaned["interval_minutes"] = _interval(data)
        cleaned["crontab"] = _text({"crontab": data.get("crontab")}, "crontab", max_length=CRONTAB_MAX) or None
    return cleaned


# --- webhooks ----------------------------------------------------------------------------------

@transaction.atomic
def webhook_create(*, actor, workspace, data: dict) -> Webhook:
    """A new webhook of the workspace; its tasks run as ``actor``. The secret is on the
    returned object (``webhook.secret``): show it to the caller once."""
    require_role(actor, workspace.pk, WRITE_ROLE, what="workspace")
    cleaned = _clean_webhook(data, partial=False)
    webhook = Webhook.objects.create(owner=actor, workspace=workspace, **cleaned)
    audit_record(actor=actor, action="webhook.create", target_type="webhook", target_id=webhook.pk,
                 workspace_id=workspace.pk, after=webhook_state(webhook))
    return webhook


@transaction.atomic
def webhook_update(*, actor, workspace, webhook_id, data: dict) -> Webhook:
    """Change the given fields (``enabled: false`` disables the hook: deliveries get 404)."""
    require_role(actor, workspace.pk, WRITE_ROLE, what="workspace")
    webhook = _locked_webhook(workspace, webhook_id)
    cleaned = _clean_webhook(data, partial=True)
    before = webhook_state(webhook)
    for field, value in cleaned.items():
        setattr(webhook, field, value)
    webhook.save()
    audit_record(actor=actor, action="webhook.change", target_type="webhook", target_id=webhook.pk,
                 workspace_id=workspace.pk, before=before, after=webhook_state(webhook))
    return webhook


@transaction.atomic
def webhook_secret_rotate(*, actor, workspace, webhook_id) -> Webhook:
    """A new secret (on the returned object); the old one stops verifying at once."""
    from triggers.services import webhook_rotate_secret

    require_role(actor, workspace.pk, WRITE_ROLE, what="workspace")
    webhook = webhook_rotate_secret(webhook=_locked_webhook(workspace, webhook_id))
    audit_record(actor=actor, action="webhook.rotate_secret", target_type="webhook", target_id=webhook.pk,
                 workspace_id=workspace.pk, before={"secret": REDACTED}, after={"secret": REDACTED})
    return webhook


@transaction.atomic
def webhook_delete(*, actor, workspace, webhook_id) -> None:
    require_role(actor, workspace.pk, WRITE_ROLE, what="workspace")
    _delete_audited(actor, workspace, _locked_webhook(workspace, webhook_id), "webhook", webhook_state)


def _delete_audited(actor, workspace, target, target_type: str, state) -> None:
    """Delete ``target`` and write its ``<type>.delete`` audit row with its last state."""
    before, pk = state(target), target.pk
    target.delete()
    audit_record(actor=actor, action=f"{target_type}.delete", target_type=target_type, target_id=pk,
                 workspace_id=workspace.pk, before=before, after=None)


def _locked_webhook(workspace, webhook_id) -> Webhook:
    try:
        return (Webhook.objects.select_for_update(of=("self",)).select_related("owner")
                .get(pk=uuid.UUID(str(webhook_id)), workspace=workspace))
    except (Webhook.DoesNotExist, ValueError):
        raise NotFound("webhook not found") from None


# --- schedules ---------------------------------------------------------------------------------

def _name_taken(workspace_id: int, name: str, *, exclude: int | None = None) -> None:
    taken = ScheduledQuery.objects.filter(workspace_id=workspace_id, name=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise ApplicationError("this workspace already has a schedule with this name", field="name", code="unique")


def _save_schedule(schedule: ScheduledQuery, timing: dict) -> ScheduledQuery:
    """Through the one writer of the beat entry; a name taken meanwhile is a 400, not a 500."""
    try:
        with transaction.atomic():
            return scheduled_query_save(schedule=schedule, **timing)
    except IntegrityError:
        _name_taken(schedule.workspace_id, schedule.name, exclude=schedule.pk)
        raise


@transaction.atomic
def schedule_create(*, actor, workspace, data: dict) -> ScheduledQuery:
    """A new schedule of the workspace; its runs are tasks of ``actor``."""
    require_role(actor, workspace.pk, WRITE_ROLE, what="workspace")
    cleaned = _clean_schedule(data, partial=False)
    timing = {"interval_minutes": cleaned.pop("interval_minutes"), "crontab": cleaned.pop("crontab")}
    _name_taken(workspace.pk, cleaned["name"])
    schedule = _save_schedule(ScheduledQuery(owner=actor, workspace=workspace, **cleaned), timing)
    audit_record(actor=actor, action="schedule.create", target_type="schedule", target_id=schedule.pk,
                 workspace_id=workspace.pk, after=schedule_state(schedule))
    return schedule


@transaction.atomic
def schedule_update(*, actor, workspace, schedule_id, data: dict) -> ScheduledQuery:
    """Change the given fields; the timing is replaced only when ``interval_minutes`` or
    ``crontab`` is given (then exactly one of them). ``enabled: false`` pauses it in beat."""
    require_role(actor, workspace.pk, WRITE_ROLE, what="workspace")
    schedule = _locked_schedule(workspace, schedule_id)
    cleaned = _clean_schedule(data, partial=True)
    before = schedule_state(schedule)
    timing = schedule_timing(schedule)
    if "interval_minutes" in cleaned:
        timing = {"interval_minutes": cleaned.pop("interval_minutes"), "crontab": cleaned.pop("crontab")}
    if "name" in cleaned:
        _name_taken(workspace.pk, cleaned["name"], exclude=schedule.pk)
    for field, value in cleaned.items():
        setattr(schedule, field, value)
    schedule = _save_schedule(schedule, timing)
    audit_record(actor=actor, action="schedule.change", target_type="schedule", target_id=schedule.pk,
                 workspace_id=workspace.pk, before=before, after=schedule_state(schedule))
    return schedule


@transaction.atomic
def schedule_delete(*, actor, workspace, schedule_id) -> None:
    """Deletes the schedule and its beat entry (triggers.signals)."""
    require_role(actor, workspace.pk, WRITE_ROLE, what="workspace")
    _delete_audited(actor, workspace, _locked_schedule(workspace, schedule_id), "schedule", schedule_state)


def _locked_schedule(workspace, schedule_id) -> ScheduledQuery:
    try:
        return (ScheduledQuery.objects.select_for_update(of=("self",))
                .select_related("owner", "periodic_task__interval", "periodic_task__crontab")
                .get(pk=schedule_pk(schedule_id), workspace=workspace))
    except (ScheduledQuery.DoesNotExist, ValueError):
        raise NotFound("schedule not found") from None
