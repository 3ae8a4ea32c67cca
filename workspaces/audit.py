"""The audit log's one writer. Call it inside the transaction of the change it records, so
the change and its row commit (or roll back) together: every audited action writes exactly
one row."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from workspaces.models import AuditEvent


def _plain(value: Any) -> Any:
    """JSON-safe (dates, UUIDs, decimals as strings)."""
    return None if value is None else json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def audit_record(*, actor, action: str, target_type: str, target_id: Any = "", workspace_id: int | None = None,
                 before: Any = None, after: Any = None) -> AuditEvent:
    is_user = getattr(actor, "is_authenticated", False)
    return AuditEvent.objects.create(
        workspace_id=workspace_id,
        actor_id=actor.pk if is_user else None,
        actor=actor.get_username() if is_user else str(actor or "system"),
        action=action, target_type=target_type, target_id=str(target_id or ""),
        before=_plain(before), after=_plain(after))
