"""POST /hooks/<id>/: inbound webhook deliveries.

A plain Django view rather than DRF: the signature covers the exact raw bytes, so nothing
may parse or re-encode the body before it is verified. CSRF-exempt because the HMAC
signature, not a cookie, authenticates the sender.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from agentos.api import ApplicationError, error_body
from triggers.errors import PayloadTooLarge, RateLimited
from triggers.services import webhook_deliver


def _error(error: ApplicationError) -> JsonResponse:
    response = JsonResponse(error_body(error.code, error.message, error.field), status=error.status_code)
    if isinstance(error, RateLimited):
        response["Retry-After"] = str(error.retry_after)
    return response


def _task_url(request: HttpRequest, task_id: uuid.UUID) -> str:
    return request.build_absolute_uri(f"/api/v1/tasks/{task_id}/")


def _body(request: HttpRequest) -> bytes:
    """At most one byte more than a webhook body may have: enough to refuse it with a 413,
    whatever the body's size and whether it declared one."""
    try:
        return request.read(settings.WEBHOOK_MAX_BYTES + 1)
    except RequestDataTooBig:
        raise PayloadTooLarge(f"the body is larger than {settings.WEBHOOK_MAX_BYTES} bytes") from None


@csrf_exempt
@require_POST
def webhook_receive(request: HttpRequest, webhook_id: uuid.UUID) -> JsonResponse:
    try:
        delivery = webhook_deliver(webhook_id=uuid.UUID(str(webhook_id)), body=_body(request),
                                   headers=dict(request.headers), remote_addr=request.META.get("REMOTE_ADDR"))
    except ApplicationError as error:
        return _error(error)
    task = delivery.task
    body = {"task_id": str(task.pk), "status": task.status, "url": _task_url(request, task.pk)}
    if delivery.duplicate:
        body["duplicate"] = True
    return JsonResponse(body, status=200 if delivery.duplicate else 202)
