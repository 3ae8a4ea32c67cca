"""Audit rows for changes made in the Django admin to shared configuration: tools, agents, MCP
servers and their tools, model prices. Mix :class:`AuditedAdmin` into a ModelAdmin::

    class AgentSpecAdmin(AuditedAdmin, admin.ModelAdmin): ...

Each admin action on an object writes exactly one row (in no workspace: these are shared by
every workspace), with who, when, what and the object's state before and after; saves and
deletions write it in the transaction of the change, list actions right after the action
returns (an action may wait on the network and commits through its own services):

- a save from the change form or from the list's editable columns: ``<name>.create`` or
  ``<name>.change`` (inline rows, e.g. an MCP server's tools, are part of the state);
- a deletion, one object or many: ``<name>.delete``, one row per object;
- a custom action of the list (e.g. ``refresh_tools``): ``<name>.<action>``, one row per
  selected object.

``<name>`` is ``tool``, ``agent``, ``mcp_server``, ``mcp_tool``, ``price``,
``prompt.template`` (AUDIT_NAMES), else the model's name; the row's ``target_type`` is the
name with ``_`` for ``.``. The state is the object's fields, the admin's list columns that are
computed (e.g. whether an MCP tool is enabled) and its inline rows.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction

from agentos.logfilters import REDACTED, redact
from workspaces.audit import audit_record

AUDIT_NAMES = {"tools.toolsetting": "tool", "tasks.agentspec": "agent", "mcp_bridge.mcpserver": "mcp_server",
               "mcp_bridge.mcptool": "mcp_tool", "observability.modelprice": "price",
               "prompts.prompttemplate": "prompt.template"}
# Fields that only record when a row was written; they change on every save and say nothing.
SKIPPED_FIELDS = ("updated_at",)
# A header value kept in the log: a reference to the environment ("Bearer ${GITHUB_TOKEN}");
# any other value could be a secret typed in and is redacted. URLs lose query-string secrets.
_ENV_REFERENCE = re.compile(r"(?:[A-Za-z-]+ )?\$\{[A-Za-z_][A-Za-z0-9_]*\}")


def _plain(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    except (TypeError, ValueError):
        return str(value)


def _fields(obj: models.Model) -> dict:
    state = {}
    for field in obj._meta.concrete_fields:
        if field.name in SKIPPED_FIELDS or field.primary_key:
            continue
        value = _plain(getattr(obj, field.attname))
        if field.name == "headers" and isinstance(value, dict):
            value = {key: item if isinstance(item, str) and _ENV_REFERENCE.fullmatch(item) else REDACTED
                     for key, item in value.items()}
        elif isinstance(value, str) and field.name == "url":
            value = redact(value)
        state[field.attname] = value
    return state


class AuditedAdmin:
    """A ModelAdmin mixin: one audit row per admin change (see the module's docstring)."""

    # The inline rows are part of the state (off when the inlines audit themselves, as
    # prompt versions do through prompts.services).
    audit_inlines = True
    # A save that changed nothing writes its row too (off: only real changes).
    audit_unchanged_saves = True
    # The admin's computed list columns are part of the state (off when they are statistics).
    audit_columns = True

    def audit_name(self) -> str:
        return AUDIT_NAMES.get(self.model._meta.label_lower, self.model._meta.model_name)

    def audit_state(self, request, obj: models.Model) -> dict:
        """The object as the admin shows it: fields, computed list columns, inline rows."""
        state = _fields(obj)
        for name in self.list_display if self.audit_columns else ():
            if (isinstance(name, str) and not name.startswith("_") and name not in state
                    and not _is_field(obj, name) and callable(getattr(self, name, None))):
                try:
                    state[name] = _plain(getattr(self, name)(obj))
                except AttributeError:  # a column computed from the list's own annotations
                    continue
        for inline in self.inlines if self.audit_inlines else ():
            link = next((f for f in inline.model._meta.fields
                         if f.is_relation and f.related_model is self.model), None)
            if link is None:
                continue
            rows = inline.model._default_manager.filter(**{link.name: obj.pk}).order_by("pk")
            state[inline.model._meta.model_name] = [{"id": row.pk, **_fields(row)} for row in rows]
        return state

    def _audit(self, request, obj, verb: str, before, after) -> None:
        name = self.audit_name()
        audit_record(actor=request.user, action=f"{name}.{verb}", target_type=name.replace(".", "_"),
                     target_id=obj.pk, before=before, after=after)

    # Saves (change form and editable list columns): the state before is read from the
    # database in save_model, the row written in save_related, once the inlines are saved.
    def save_model(self, request, obj, form, change) -> None:
        before = None
        if change and obj.pk is not None:
            stored = type(obj)._default_manager.filter(pk=obj.pk).first()
            before = self.audit_state(request, stored) if stored is not None else None
        form._audit_before = before
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        obj = form.instance
        before, after = getattr(form, "_audit_before", None), self.audit_state(request, obj)
        if change and before == after and not self.audit_unchanged_saves:
            return
        self._audit(request, obj, "change" if change else "create", before, after)

    def delete_model(self, request, obj) -> None:
        with transaction.atomic():
            before, pk = self.audit_state(request, obj), obj.pk
            super().delete_model(request, obj)
            obj.pk = pk  # the row names what was deleted
            self._audit(request, obj, "delete", before, None)

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            objects = list(queryset)
            states = [(obj.pk, self.audit_state(request, obj)) for obj in objects]
            super().delete_queryset(request, queryset)
            for (pk, before), obj in zip(states, objects, strict=True):
                obj.pk = pk
                self._audit(request, obj, "delete", before, None)

    def get_actions(self, request):
        actions = super().get_actions(request)
        return {name: (self._audited_action(function, name) if name != "delete_selected" else function,
                       label, description)
                for name, (function, label, description) in actions.items()}

    def _audited_action(self, function, name: str):
        def run(modeladmin, request, queryset):
            # No transaction around the action: it may wait on the network (refreshing an MCP
            # server's tools); its services commit their own changes. The rows are written
            # once it has returned (an action that raises writes none).
            objects = list(queryset)
            before = {obj.pk: self.audit_state(request, obj) for obj in objects}
            response = function(modeladmin, request, queryset)
            # Read again: the action may have changed the rows (or deleted some).
            fresh = queryset.model._default_manager.filter(pk__in=list(before))
            after = {obj.pk: self.audit_state(request, obj) for obj in fresh}
            with transaction.atomic():
                for obj in objects:
                    self._audit(request, obj, name, before[obj.pk], after.get(obj.pk))
            return response
        return run


def _is_field(obj: models.Model, name: str) -> bool:
    from django.core.exceptions import FieldDoesNotExist

    try:
        obj._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True
