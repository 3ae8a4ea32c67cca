"""Evaluating a prompt version on dataset items, and the claim loop of the eval jobs.

Concurrency is bounded per run: ``eval_run_start`` enqueues ``run.concurrency`` jobs, and
each job evaluates items until none is pending, claiming them one at a time with
``SELECT ... FOR UPDATE SKIP LOCKED`` so two jobs never evaluate the same item. The run's
counters move with an atomic UPDATE as each item finishes: that is the live progress.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from agentos.llm import InvalidModelOutput, LLMError, LLMRequest, get_provider
from evals.checks import Output, passed, verdict
from evals.grading import grade
from evals.models import DatasetItem, EvalResult, EvalRun
from prompts.errors import PromptError
from prompts.models import PromptVersion
from prompts.services import prompt_version_render

logger = logging.getLogger(__name__)
DEFAULT_USER_MESSAGE = "Answer as instructed."


def item_variables(*, version: PromptVersion, item: DatasetItem) -> dict[str, Any]:
    """The template's sample variables, overridden by the item's query and variables."""
    template = version.template
    variables = dict(template.sample_variables or {})
    if item.query and "query" in template.declared_variables:
        variables["query"] = item.query
    variables.update(item.variables or {})
    return variables


def item_messages(*, system: str, item: DatasetItem, variables: dict) -> list[dict[str, str]]:
    """Like the runner's first call of a prompt: the rendered body, then the query."""
    user = item.query or str(variables.get("query") or "") or DEFAULT_USER_MESSAGE
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _verdicts(item: DatasetItem, output: Output) -> list[dict]:
    return [verdict(check, output, grade=grade) for check in item.checks or []]


def evaluate_item(*, version: PromptVersion, item: DatasetItem) -> dict[str, Any]:
    """The EvalResult fields for one item: output, verdicts, tokens, latency. Never raises
    for a problem of the prompt or the model: those are the item's error."""
    started = time.monotonic()
    variables = item_variables(version=version, item=item)
    try:
        rendered = prompt_version_render(version=version, variables=variables)
    except PromptError as error:
        return {"status": EvalResult.Status.ERROR, "passed": False, "error": str(error)[:1000], "checks": []}
    request = LLMRequest(messages=item_messages(system=rendered.text, item=item, variables=variables),
                         response_schema=rendered.response_schema, schema_name=version.template.slug,
                         temperature=rendered.temperature, max_tokens=rendered.max_tokens, variables=variables)
    query = str(variables.get("query") or item.query or "")
    try:
        result = get_provider().complete(request)
    except InvalidModelOutput as error:
        # No schema-valid answer: the item fails; the checks still say what the text got right.
        output = Output(data=None, text=error.raw_text or "", query=query)
        return {"status": EvalResult.Status.ERROR, "passed": False, "error": error.compact(), "text": output.text,
                "checks": _verdicts(item, output), "latency_ms": int((time.monotonic() - started) * 1000)}
    except LLMError as error:
        return {"status": EvalResult.Status.ERROR, "passed": False, "error": error.compact(), "checks": [],
                "latency_ms": int((time.monotonic() - started) * 1000)}
    text = result.text if result.data is None else json.dumps(result.data, ensure_ascii=False)
    output = Output(data=result.data, text=text, query=query)
    verdicts = _verdicts(item, output)
    return {"status": EvalResult.Status.DONE, "passed": passed(verdicts), "output": result.data, "text": text,
            "checks": verdicts, "tokens_in": result.tokens_in, "tokens_out": result.tokens_out,
            "latency_ms": result.latency_ms or int((time.monotonic() - started) * 1000)}


def _claim(run_id: int) -> EvalResult | None:
    with transaction.atomic():
        row = (EvalResult.objects.select_for_update(skip_locked=True, of=("self",)).select_related("item")
               .filter(run_id=run_id, status=EvalResult.Status.PENDING).order_by("id").first())
        if row is None:
            return None
        row.status, row.started_at = EvalResult.Status.RUNNING, timezone.now()
        row.save(update_fields=["status", "started_at"])
        return row


def _without_nul(value: Any) -> Any:
    """``value`` with every NUL character replaced by U+FFFD: PostgreSQL refuses NUL in text
    and in JSON, and a model may well answer with one."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


# What a result keeps when its fields could not be saved: none of them, only why.
_UNSAVED = {"status": EvalResult.Status.ERROR, "passed": False, "output": None, "text": "", "checks": [],
            "tokens_in": 0, "tokens_out": 0, "latency_ms": 0}


def _finish(row: EvalResult, fields: dict[str, Any]) -> None:
    with transaction.atomic():
        for name, value in fields.items():
            setattr(row, name, _without_nul(value))
        row.finished_at = timezone.now()
        row.save()
        EvalRun.objects.filter(pk=row.run_id).update(
            done=F("done") + 1, passed=F("passed") + int(bool(row.passed)),
            errors=F("errors") + int(row.status == EvalResult.Status.ERROR),
            tokens_in=F("tokens_in") + row.tokens_in, tokens_out=F("tokens_out") + row.tokens_out,
            latency_ms_total=F("latency_ms_total") + row.latency_ms)


def _finalize(run_id: int) -> None:
    unfinished = EvalResult.objects.filter(run_id=run_id, status__in=[EvalResult.Status.PENDING,
                                                                     EvalResult.Status.RUNNING])
    if not unfinished.exists():
        EvalRun.objects.filter(pk=run_id, status__in=[EvalRun.Status.QUEUED, EvalRun.Status.RUNNING]).update(
            status=EvalRun.Status.COMPLETED, finished_at=timezone.now())


def eval_run_work(*, run_id: int) -> int:
    """One worker of a run: evaluate pending items until none is left; returns how many."""
    run = EvalRun.objects.select_related("version__template").filter(pk=run_id).first()
    if run is None or run.finished:
        return 0
    EvalRun.objects.filter(pk=run_id, status=EvalRun.Status.QUEUED).update(status=EvalRun.Status.RUNNING,
                                                                           started_at=timezone.now())
    count = 0
    # Each pass claims one pending row, so the loop ends after at most `total` items.
    for _ in range(run.total):
        row = _claim(run_id)
        if row is None:
            break
        try:
            fields = evaluate_item(version=run.version, item=row.item)
        except Exception as error:
            logger.exception("eval run %s: item %s failed", run_id, row.item_id)
            fields = {"status": EvalResult.Status.ERROR, "passed": False,
                      "error": f"internal_error: {type(error).__name__}: {error}"[:1000]}
        try:
            _finish(row, fields)
        except Exception as error:
            # The database refused the result (a value out of range, ...): the item is still
            # finished, as an error that says why, so the run can complete.
            logger.exception("eval run %s: the result of item %s could not be saved", run_id, row.item_id)
            reason = " ".join(f"result_not_saved: {type(error).__name__}: {error}".split())
            _finish(row, {**_UNSAVED, "error": reason[:1000]})
        count += 1
    _finalize(run_id)
    return count
