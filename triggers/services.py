"""Webhook deliveries in, status notifications out.

``webhook_deliver`` is the whole inbound path (the view only moves bytes): look up the hook
(its owner must still be an operator of its workspace), verify the signature, record the
delivery, and for a new one rate-limit, parse, build the query and create the task. A
delivery is identified by what its sender signed, (hook, timestamp, body digest), in a table
with a unique constraint: a replay, however its header is worded, gets the first task back
without counting towards the rate limit, and no cache restart can reopen it. Every refusal
raises inside the delivery's transaction, so a refused delivery leaves no row behind.

``task_status_changed`` is the one call the orchestrator makes when a task reaches
completed, failed or waiting_human; it enqueues the signed callback after commit.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from agentos.api import ApplicationError, Conflict, NotFound
from agentos.jsonguard import JSONRejected, parse_json
from triggers import signing
from triggers.errors import InvalidSignature, PayloadTooLarge, RateLimited
from triggers.models import CallbackEvent, CallbackSecret, Webhook, WebhookDelivery

# Request headers worth keeping with the task (never Authorization, cookies or the signature).
RECORDED_HEADERS = ("user-agent", "content-type", "x-agentos-delivery", "x-request-id", "x-github-event",
                    "x-gitlab-event")
# Payloads up to this size are kept verbatim in trigger_details for the audit trail.
RECORDED_PAYLOAD_BYTES = 8192
# Deliveries are kept this long past the tolerance window, for clocks of several web
# processes that differ a little.
DELIVERY_KEEP_MARGIN_SECONDS = 60

EVENT_BY_STATUS = {
    "completed": CallbackEvent.COMPLETED,
    "failed": CallbackEvent.FAILED,
    "waiting_human": CallbackEvent.WAITING_HUMAN,
}


@dataclass(frozen=True)
class Delivery:
    task: Any  # tasks.models.Task
    duplicate: bool  # True when the same signed request had already created ``task``


# --- inbound webhooks ----------------------------------------------------------------------

def owner_start_problem(*, owner, workspace_id: int) -> str | None:
    """Why a webhook's or schedule's owner may no longer start tasks in its workspace, or None.

    Its tasks run as the owner, so the owner must still be an active operator (or above) of
    the workspace (staff: admin everywhere): removing them from the workspace or demoting
    them to viewer stops their hooks and schedules there.
    """
    from workspaces.access import role_of
    from workspaces.models import Role, role_at_least

    name = owner.get_username()
    if not owner.is_active:
        return f"its owner {name} is deactivated"
    role = role_of(owner, workspace_id)
    if not role_at_least(role, Role.OPERATOR):
        where = f"a {role} of" if role else "not a member of"
        return f"its owner {name} is {where} this workspace; running it needs an operator or above"
    return None


def webhook_get_enabled(*, webhook_id: uuid.UUID | str) -> Webhook:
    """The enabled hook whose owner may still start tasks with it, or NotFound (unknown and
    disabled hooks, and hooks of such owners, are indistinguishable)."""
    webhook = Webhook.objects.select_related("owner").filter(pk=webhook_id, enabled=True).first()
    if webhook is None or owner_start_problem(owner=webhook.owner, workspace_id=webhook.workspace_id):
        raise NotFound("no such webhook")
    return webhook


def webhook_check_rate(*, webhook: Webhook) -> None:
    """Fixed one-minute window per hook, counted in the shared cache (Redis) across web processes."""
    limit = settings.WEBHOOK_RATE_LIMIT
    window = int(time.time() // 60)
    key = f"triggers:rate:{webhook.pk}:{window}"
    cache.add(key, 0, timeout=120)
    if cache.incr(key) > limit:
        retry_after = 60 - int(time.time()) % 60
        raise RateLimited(f"more than {limit} deliveries a minute to this webhook", retry_after=retry_after)


def webhook_build_query(*, webhook: Webhook, payload: dict[str, Any]) -> str:
    """The task's query: the hook's template filled from the payload, or the payload's "query"."""
    if webhook.query_template.strip():
        from prompts.errors import PromptRenderError
        from prompts.rendering import render_body

        variables = {key: value for key, value in payload.items() if isinstance(key, str)}
        variables["payload"] = payload
        try:
            query = render_body(body=webhook.query_template, variables=variables, label=f"webhook {webhook.name}")
        except PromptRenderError as error:
            raise ApplicationError(error.message, field="query_template", code="template_error")
    else:
        query = payload.get("query")
        if not isinstance(query, str):
            raise ApplicationError('the payload has no "query" string', field="query", code="missing_query")
    query = query.strip()
    if not query:
        raise ApplicationError("the query is empty", field="query", code="missing_query")
    if len(query) > settings.QUERY_MAX_LENGTH:
        raise ApplicationError(f"the query is longer than {settings.QUERY_MAX_LENGTH} characters", field="query")
    return query


def _parse_payload(body: bytes) -> dict[str, Any]:
    """The body through the API's strict parser (nesting depth, finite numbers, storable text)."""
    try:
        payload = parse_json(body)
    except JSONRejected as error:
        raise ApplicationError(error.message, field=error.field, code="malformed_json") from None
    if not isinstance(payload, dict):
        raise ApplicationError("the body must be a JSON object", code="malformed_json")
    return payload


def _trigger_details(*, webhook: Webhook, body: bytes, payload: dict, headers: dict[str, str],
                     signed_at: int, remote_addr: str | None) -> dict[str, Any]:
    lowered = {key.lower(): value for key, value in headers.items()}
    details: dict[str, Any] = {
        "webhook_id": str(webhook.pk),
        "webhook_name": webhook.name,
        "delivery_id": lowered.get("x-agentos-delivery") or str(uuid.uuid4()),
        "signed_at": signed_at,
        "received_at": timezone.now().isoformat(),
        "remote_addr": remote_addr,
        "headers": {name: lowered[name][:200] for name in RECORDED_HEADERS if name in lowered},
        "payload_bytes": len(body),
    }
    if len(body) <= RECORDED_PAYLOAD_BYTES:
        details["payload"] = payload
    return details


def webhook_deliver(*, webhook_id: uuid.UUID | str, body: bytes, headers: dict[str, str],
                    remote_addr: str | None = None) -> Delivery:
    """Verify and act on one inbound delivery; a refusal raises an ApplicationError and leaves nothing written."""
    webhook = webhook_get_enabled(webhook_id=webhook_id)
    if len(body) > settings.WEBHOOK_MAX_BYTES:
        raise PayloadTooLarge(f"the body is larger than {settings.WEBHOOK_MAX_BYTES} bytes")
    header = next((value for key, value in headers.items() if key.lower() == signing.SIGNATURE_HEADER.lower()), None)
    try:
        signed_at = signing.verify(secret=webhook.secret, body=body, header=header,
                                   tolerance=settings.WEBHOOK_SIGNATURE_TOLERANCE)
    except signing.SignatureError as error:
        raise InvalidSignature(str(error))
    return _record_delivery(webhook=webhook, signed_at=signed_at, body=body, headers=headers,
                            remote_addr=remote_addr)


def _record_delivery(*, webhook: Webhook, signed_at: int, body: bytes, headers: dict[str, str],
                     remote_addr: str | None) -> Delivery:
    """Create the task of a new delivery, or return the task of the same delivery seen before.

    The delivery's row is inserted first: a replay finds it taken and gets the first task
    back before anything is counted. Only a new delivery is rate-limited, parsed and turned
    into a task, in the same transaction as its row, so a refusal rolls the row back with
    it. A copy arriving while the first is being created waits on the unique index until
    that transaction ends, then finds its row (or, when the first was refused, takes its place).
    """
    key = {"webhook": webhook, "signed_at": signed_at, "body_sha256": hashlib.sha256(body).hexdigest()}
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = WebhookDelivery.objects.create(**key)
        except IntegrityError:
            return _duplicate(key)
        # Counted only for a new, correctly signed delivery: nobody without the secret, and
        # nobody replaying a captured request, can use up a hook's budget and lock its real
        # sender out.
        webhook_check_rate(webhook=webhook)
        payload = _parse_payload(body)
        query = webhook_build_query(webhook=webhook, payload=payload)
        details = _trigger_details(webhook=webhook, body=body, payload=payload, headers=headers,
                                   signed_at=signed_at, remote_addr=remote_addr)
        task = triggered_task_create(owner=webhook.owner, query=query, trigger="webhook", details=details,
                                     options=webhook.options or {}, callback_url=webhook.callback_url,
                                     workspace_id=webhook.workspace_id)
        record.task = task
        record.save(update_fields=["task"])
    return Delivery(task=task, duplicate=False)


def _duplicate(key: dict) -> Delivery:
    seen = WebhookDelivery.objects.select_related("task").filter(**key).first()
    if seen is None or seen.task is None:  # its task was deleted since
        raise Conflict("this delivery was already received", code="duplicate_delivery")
    return Delivery(task=seen.task, duplicate=True)


def webhook_deliveries_prune(*, now: float | None = None) -> int:
    """Forget deliveries whose timestamp the signature check refuses by now; returns how many.

    Such a request is refused as stale before it is looked up, so its row has no use left.
    """
    now = time.time() if now is None else now
    cutoff = int(now) - settings.WEBHOOK_SIGNATURE_TOLERANCE - DELIVERY_KEEP_MARGIN_SECONDS
    deleted, _ = WebhookDelivery.objects.filter(signed_at__lt=cutoff).delete()
    return deleted


def webhook_rotate_secret(*, webhook: Webhook) -> Webhook:
    from triggers.models import generate_secret

    webhook.secret = generate_secret()
    webhook.save(update_fields=["secret", "updated_at"])
    return webhook


def triggered_task_create(*, owner, query: str, trigger: str, details: dict, options: dict, callback_url: str = "",
                          workspace_id: int | None = None):
    """Create (and enqueue on commit) a task through the orchestrator's one entry point.

    A ``callback_url`` key in the stored options is accepted as well as the field, since
    staff may well put it there; it is not an agent option, so it is taken out of them.
    """
    from tasks.services import task_create

    options = dict(options)
    callback_url = str(options.pop("callback_url", "") or callback_url or "")
    return task_create(owner=owner, query=query, trigger=trigger, trigger_details=details, options=options,
                       callback_url=callback_url or None, workspace=_workspace(workspace_id))


def _workspace(workspace_id: int | None):
    """The hook's or schedule's workspace (None: the owner's default one)."""
    from workspaces.models import Workspace

    return Workspace.objects.get(pk=workspace_id) if workspace_id else None


# --- outbound notifications ----------------------------------------------------------------

def callback_secret_for_owner(*, owner) -> str:
    secret, _ = CallbackSecret.objects.get_or_create(owner=owner)
    return secret.secret


def callback_signer(*, task) -> tuple[str, Any]:
    """Which key signs a task's callbacks (README, "Callbacks"), and the webhook whose secret
    it is (None when it is no webhook's).

    1. A task started by a webhook: that webhook's secret (the receiver already has it).
    2. Otherwise CALLBACK_SIGNING_SECRET when the operator set one (single-tenant setups).
    3. Otherwise the owner's own callback secret, so no user can forge another user's events.
    """
    details = task.trigger_details or {}
    if task.trigger == "webhook" and details.get("webhook_id"):
        hook = Webhook.objects.filter(pk=details["webhook_id"]).values_list("pk", "secret").first()
        if hook and hook[1]:
            return hook[1], hook[0]
    if settings.CALLBACK_SIGNING_SECRET:
        return settings.CALLBACK_SIGNING_SECRET, None
    return callback_secret_for_owner(owner=task.owner), None


def callback_signed_by_hook(*, webhook_id: Any, signed_at: int, body: bytes) -> None:
    """Record a callback signed with a webhook's own secret as a delivery that hook has
    already received: a copy of it posted to the hook (within the signature tolerance,
    after which the timestamp is refused anyway) is then a duplicate that starts nothing
    (409 ``duplicate_delivery``), instead of a correctly signed request starting a task.
    Called before the callback leaves."""
    WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(webhook_id=webhook_id, signed_at=signed_at, body_sha256=hashlib.sha256(body).hexdigest())],
        ignore_conflicts=True)  # another attempt of the same event in the same second: already recorded


def callback_event_body(*, task, event: str, delivery_id: str) -> str:
    from tasks.presenters import task_to_dict

    event_body = {"id": delivery_id, "event": event, "created_at": timezone.now().isoformat(),
                  "task": task_to_dict(task)}
    return json.dumps(event_body, cls=DjangoJSONEncoder, ensure_ascii=False)


def task_status_changed(*, task_id: uuid.UUID | str, status: str) -> str | None:
    """Notify the task's callback URL of a completed / failed / waiting_human status.

    The event body is built now (so it shows the task as it was at this status, even if the
    job runs later) and the job is enqueued on commit. Returns the delivery id, or None when
    there is nothing to send. Called by the receiver of ``tasks.signals.task_status_changed``
    (triggers/signals.py), which the step store sends after the commit.
    """
    event = EVENT_BY_STATUS.get(str(status))
    if event is None:
        return None
    from tasks.models import Task

    task = Task.objects.select_related("owner").filter(pk=task_id).first()
    if task is None or not task.callback_url:
        return None
    delivery_id = str(uuid.uuid4())
    body = callback_event_body(task=task, event=event, delivery_id=delivery_id)
    url = task.callback_url

    def enqueue() -> None:
        from triggers.jobs import deliver_callback

        deliver_callback.delay(str(task.pk), delivery_id, url, str(event), body)

    transaction.on_commit(enqueue)
    return delivery_id
