"""What a task does when the model provider fails in a way the model did not cause.

The provider (agentos.llm) has already retried a transient failure for up to
LLM_RETRY_WINDOW_SECONDS. What reaches the runner is handled by who must act
(agentos.llm.errors):

- **transient** (429, 5xx, timeouts, garbled or HTML replies...): nobody. The task commits
  a ``provider_wait`` step (never shown to the model, counted toward nothing), shows
  "waiting for the model provider, next try at ..." (status ``waiting_provider``,
  ``Task.provider_error``) and is enqueued again after the delay: exponential backoff with
  jitter from LLM_OUTAGE_BACKOFF_SECONDS, at least the server's ``Retry-After``, at most
  BACKOFF_CAP. The outage is measured from its first wait (the ``since`` carried by each
  wait step of an unbroken run of them). Once it has lasted LLM_OUTAGE_MAX_SECONDS, or the
  server asks for a wait beyond that, the task fails with the typed error (a retry via
  the API continues it later).
  Waiting for our own per-model limits (``model_capacity``, tasks/limits.py) is no outage:
  such a wait is a ``provider_wait`` step too (same backoff, "waiting for model capacity"),
  but it never fails the task, and its time (the call's wait for a slot plus the delay) is
  left out of an outage it interrupts (``excluded_s`` on the outage's next wait step).
- **configuration** (401/403, unknown model, unsupported parameter...): an operator. The
  task pauses with the error (a ``pause`` step, ``Task.provider_error``); ``resume``
  continues it once the settings are fixed. The end user is not asked anything.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from agentos.llm import CONFIGURATION, TRANSIENT, LLMError
from tasks.engine.state import PROVIDER_WAIT, StepRecord
from tasks.models import Step, StepKind

BACKOFF_CAP = 300.0  # seconds: the longest wait between two tries, whatever the attempt
CAPACITY = "model_capacity"  # tasks.limits.ModelCapacity's code


def handles(error: LLMError) -> bool:
    """True for the errors the task waits out or pauses for (not the model's, not bugs)."""
    return error.kind in (CONFIGURATION, TRANSIENT)


def _when(moment: datetime) -> str:
    """ISO 8601 to the second (people read it), rounded up: a try is never shown too early."""
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.isoformat().replace("+00:00", "Z")


def is_capacity_wait(step: Step | StepRecord) -> bool:
    """A wait for our own per-model limits, not for the provider."""
    error = step.output.get("error") if isinstance(step.output, dict) else None
    return step.kind == PROVIDER_WAIT and isinstance(error, dict) and error.get("code") == CAPACITY


def _outage(steps: list[StepRecord]) -> tuple[datetime | None, int, float]:
    """(start, attempts so far, seconds of capacity waits to leave out) of the provider
    outage the log ends in, or (None, 0, 0.0). Capacity waits at the end of the log neither
    start nor end an outage."""
    excluded = 0.0
    for step in reversed(steps):
        if step.kind != PROVIDER_WAIT:
            break
        data = step.input or {}
        if is_capacity_wait(step):
            excluded += float(data.get("capacity_s") or 0.0)
            continue
        return (parse_datetime(str(data.get("since") or "")), int(data.get("attempt") or 0),
                excluded + float(data.get("excluded_s") or 0.0))
    return None, 0, 0.0


def _capacity_waits(steps: list[StepRecord]) -> tuple[datetime | None, int]:
    """(first wait, count) of the run of capacity waits the log ends in."""
    since, count = None, 0
    for step in reversed(steps):
        if not is_capacity_wait(step):
            break
        since, count = parse_datetime(str((step.input or {}).get("since") or "")), count + 1
    return since, count


def next_delay(attempt: int, retry_after: float | None) -> float:
    """Seconds before try ``attempt + 1``: base * 2^(attempt-1), jittered down to half, capped,
    and never shorter than what the server asked for."""
    ceiling = min(settings.LLM_OUTAGE_BACKOFF_SECONDS * 2 ** (attempt - 1), BACKOFF_CAP)
    jittered = ceiling / 2 + random.random() * ceiling / 2
    return max(jittered, retry_after or 0.0)


def provider_error(error: LLMError, **extra: Any) -> dict:
    """The error as ``Task.provider_error`` and the step's output show it."""
    return {**error.as_dict(), **extra}


def fault_step(*, steps: list[StepRecord], draft: Step, error: LLMError) -> Step:
    """The step to commit for ``error`` raised by the call ``draft`` was for: a configuration
    pause, a provider wait, or (the outage outlasted LLM_OUTAGE_MAX_SECONDS) the task's failure.
    It keeps the draft's agent, subtask, prompt, context, tokens and duration."""
    now = timezone.now()
    if error.kind == CONFIGURATION:
        note = "an operator must fix the model provider's settings, then resume the task"
        return _from(draft, kind=StepKind.PAUSE, error=error.compact(),
                     input={"reason": "configuration", "call": draft.kind},
                     output={"error": provider_error(error, action=note)})
    if error.code == CAPACITY:
        return _capacity_wait(steps, draft, error, now)
    since, attempt, excluded = _outage(steps)
    since = since or now
    waited = (now - since).total_seconds() - excluded
    limit = float(settings.LLM_OUTAGE_MAX_SECONDS)
    delay = min(next_delay(attempt + 1, error.retry_after), max(limit - waited, 0.0))
    if waited >= limit or (error.retry_after or 0.0) > limit - waited:
        why = (f"the model provider was unavailable for {waited:.0f} s" if waited >= limit else
               f"the model provider asks to wait {error.retry_after:.0f} s more, after {waited:.0f} s")
        reason = f"{error.compact()} ({why}; LLM_OUTAGE_MAX_SECONDS is {limit:g})"
        failed = _from(draft, kind=StepKind.ERROR, error=reason, input={"reason": "provider_unavailable",
                                                                        "call": draft.kind},
                       output={"error": provider_error(error, since=_when(since), attempts=attempt + 1)})
        failed.agent, failed.subtask_id = "", ""  # a task-level error: the task fails
        return failed
    next_try = now + timedelta(seconds=delay)
    return _from(draft, kind=StepKind.PROVIDER_WAIT, error=error.compact(),
                 input={"call": draft.kind, "attempt": attempt + 1, "since": _when(since),
                        "next_try_at": _when(next_try), "delay_s": round(delay, 3), "excluded_s": round(excluded, 3)},
                 output={"error": provider_error(error)})


def _capacity_wait(steps: list[StepRecord], draft: Step, error: LLMError, now: datetime) -> Step:
    """A wait for model capacity: the outage backoff, no ceiling, and its whole time (the
    call's wait for a slot and the delay) recorded so an outage around it leaves it out."""
    since, attempt = _capacity_waits(steps)
    delay = next_delay(attempt + 1, error.retry_after)
    return _from(draft, kind=StepKind.PROVIDER_WAIT, error=error.compact(),
                 input={"call": draft.kind, "attempt": attempt + 1, "since": _when(since or now),
                        "next_try_at": _when(now + timedelta(seconds=delay)), "delay_s": round(delay, 3),
                        "capacity_s": round(delay + draft.duration_ms / 1000, 3)},
                 output={"error": provider_error(error)})


def _from(draft: Step, *, kind: str, error: str, input: dict, output: dict) -> Step:
    return Step(kind=kind, status="error", error=error, agent=draft.agent, subtask_id=draft.subtask_id,
                input=input, output=output, prompt_label=draft.prompt_label, context=draft.context,
                context_hash=draft.context_hash, tokens_in=draft.tokens_in, tokens_out=draft.tokens_out,
                tokens_estimated=draft.tokens_estimated, duration_ms=draft.duration_ms)


def _waiting_on(error: dict) -> str:
    # model_capacity: the per-model limits shared by the workers (tasks/limits.py), not an outage.
    return "model capacity" if error.get("code") == CAPACITY else f"the model provider ({error.get('code')})"


def task_provider_error(step: Step | StepRecord) -> dict | None:
    """``Task.provider_error`` after committing ``step`` (None when the step is no provider fault)."""
    data = step.input or {}
    error = (step.output or {}).get("error") if isinstance(step.output, dict) else None
    if not isinstance(error, dict):
        return None
    if step.kind == StepKind.PROVIDER_WAIT:
        return {**error, "next_try_at": data.get("next_try_at"), "since": data.get("since"),
                "attempt": data.get("attempt"), "step": step.index,
                "message": f"waiting for {_waiting_on(error)}, next try at {data.get('next_try_at')}"}
    if step.kind == StepKind.PAUSE and data.get("reason") == "configuration":
        return {**error, "step": step.index,
                "message": f"paused: the model provider rejected the configuration ({error.get('code')}): "
                           f"{error.get('message')}. An operator must fix it, then resume the task."}
    if step.kind == StepKind.ERROR and data.get("reason") == "provider_unavailable":
        return {**error, "step": step.index, "message": step.error}
    return None
