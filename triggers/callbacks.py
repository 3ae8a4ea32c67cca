"""One attempt at POSTing a signed event to a task's callback URL, recorded as a row.

The Celery job (triggers.jobs.deliver_callback) calls :func:`callback_attempt` and retries
with exponential backoff while the outcome says ``retry``. Outbound requests go through
tools.net.safe_fetch, the same SSRF guard as the http_get tool: allowlisted hosts only
(CALLBACK_ALLOWED_HOSTS, by default HTTP_GET_ALLOWED_HOSTS), and no private or loopback
address unless HTTP_ALLOW_PRIVATE_ADDRESSES is on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from django.conf import settings

from triggers import signing
from triggers.models import CallbackAttempt

# Answers worth another try; any other non-2xx (400, 401, 404, 410, ...) means the receiver
# will not accept this event, and repeating it would only hammer the receiver.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429}) | frozenset(range(500, 600))
RESPONSE_BYTES = 4096


@dataclass(frozen=True)
class AttemptOutcome:
    ok: bool
    retry: bool
    status_code: int | None
    error: str


def retry_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): base * 2^(attempt-1), capped."""
    return min(settings.CALLBACK_RETRY_BASE_SECONDS * (2 ** (attempt - 1)), settings.CALLBACK_RETRY_MAX_SECONDS)


def _post(*, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str, bool]:
    """(status code, one-line error, retryable) of one POST under the SSRF rules."""
    from tools.net import URLNotAllowed, safe_fetch

    try:
        response = safe_fetch(url, method="POST", headers=headers, body=body, max_bytes=RESPONSE_BYTES,
                              timeout=settings.CALLBACK_TIMEOUT, max_redirects=0,
                              allowed_hosts=settings.CALLBACK_ALLOWED_HOSTS)
    except URLNotAllowed as error:
        # A configuration problem: the URL will not become allowed by waiting.
        return None, f"refused: {error}", False
    except httpx.HTTPError as error:
        return None, f"{type(error).__name__}: {error}"[:500], True
    if 200 <= response.status < 300:
        return response.status, "", False
    snippet = response.text.strip().replace("\n", " ")[:200]
    return response.status, f"HTTP {response.status}" + (f": {snippet}" if snippet else ""), \
        response.status in RETRYABLE_STATUSES


def callback_attempt(*, task_id: str, delivery_id: str, url: str, event: str, body: str, attempt: int,
                     max_attempts: int) -> AttemptOutcome:
    """POST ``body`` once (signed now, with a fresh timestamp) and record the attempt."""
    from tasks.models import Task
    from triggers.services import callback_signed_by_hook, callback_signer

    task = Task.objects.select_related("owner").filter(pk=task_id).first()
    if task is None:  # deleted since the event: nothing to report on, nowhere to record
        return AttemptOutcome(ok=False, retry=False, status_code=None, error="the task no longer exists")
    raw = body.encode("utf-8")
    secret, webhook_id = callback_signer(task=task)
    signed_at = int(time.time())
    if webhook_id is not None:
        # Signed with the hook's own secret, the event would be a valid request to that hook:
        # recorded first as one it has received, so a captured copy posted there starts nothing.
        callback_signed_by_hook(webhook_id=webhook_id, signed_at=signed_at, body=raw)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "AgentOS-Callbacks/1.0",
        signing.SIGNATURE_HEADER: signing.sign(secret=secret, body=raw, timestamp=signed_at),
        "X-AgentOS-Event": event,
        "X-AgentOS-Delivery": delivery_id,
        "X-AgentOS-Attempt": str(attempt),
    }
    started = time.monotonic()
    status_code, error, retryable = _post(url=url, body=raw, headers=headers)
    duration_ms = int((time.monotonic() - started) * 1000)
    ok = not error
    CallbackAttempt.objects.create(task=task, delivery_id=delivery_id, url=url, event=event, attempt=attempt,
                                   status_code=status_code, ok=ok, error=error, duration_ms=duration_ms)
    return AttemptOutcome(ok=ok, retry=retryable and attempt < max_attempts, status_code=status_code, error=error)
