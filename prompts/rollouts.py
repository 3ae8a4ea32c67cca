"""Weighted rollouts of a candidate prompt version: start, promote, stop, per-arm figures
and the automatic stop.

Which task gets which arm is decided by :func:`prompts.services.prompt_version_for_task`
(a hash of the task id and the slug, prompts.assignment). Each arm's figures are its
version's counters minus the values they had when the rollout started (``baseline``).

Automatic stop (:func:`prompt_rollout_check`): once the candidate arm has ``min_uses``
uses, if its failure rate exceeds the active arm's by more than ``failure_margin`` the
rollout ends as ``auto_stopped`` and keeps the figures that decided it. It runs after
every :func:`prompts.services.prompt_version_record_use` of a candidate and from the beat
job ``prompts.check_rollouts`` (usage written by other paths).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agentos.api import Conflict
from prompts.assignment import BUCKETS
from prompts.errors import PromptError
from prompts.models import PromptRollout, PromptTemplate, PromptVersion

logger = logging.getLogger(__name__)
COUNTERS = ("uses", "successes", "failures", "tokens_in_total", "tokens_out_total", "latency_ms_total")
# The smallest weight that serves anyone: one bucket of BUCKETS, in percent (0.01).
MIN_WEIGHT = 100 / BUCKETS


def _counters(version: PromptVersion) -> dict[str, int]:
    return {name: getattr(version, name) for name in COUNTERS}


@dataclass(frozen=True)
class Arm:
    """One arm's figures since the rollout started."""

    label: str
    version_id: int
    uses: int
    successes: int
    failures: int
    tokens_in_total: int
    tokens_out_total: int
    latency_ms_total: int

    @property
    def failure_rate(self) -> float | None:
        return self.failures / self.uses if self.uses else None

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.uses if self.uses else None

    def mean(self, total: int) -> float | None:
        return total / self.uses if self.uses else None

    def as_dict(self) -> dict:
        return {**asdict(self), "failure_rate": self.failure_rate, "success_rate": self.success_rate,
                "mean_tokens_in": self.mean(self.tokens_in_total), "mean_tokens_out": self.mean(self.tokens_out_total),
                "mean_latency_ms": self.mean(self.latency_ms_total)}


def _arm(version: PromptVersion, baseline: dict) -> Arm:
    now = _counters(version)
    return Arm(label=version.label, version_id=version.pk,
               **{name: max(0, now[name] - int(baseline.get(name, 0))) for name in COUNTERS})


def rollout_arms(*, rollout: PromptRollout) -> dict[str, Arm]:
    """{"active": Arm, "candidate": Arm} from the versions' current counters (one query)."""
    versions = {v.pk: v for v in PromptVersion.objects.select_related("template").filter(
        pk__in=[rollout.active_version_id, rollout.candidate_id])}
    baseline = rollout.baseline or {}
    return {"active": _arm(versions[rollout.active_version_id], baseline.get("active", {})),
            "candidate": _arm(versions[rollout.candidate_id], baseline.get("candidate", {}))}


def rollout_feedback(*, rollout: PromptRollout) -> dict[str, dict[str, int]]:
    """👍/👎 per arm's version label, on tasks created since the rollout started (the evals
    app keeps the feedback; without it, none)."""
    if not apps.is_installed("evals"):
        return {}
    from evals.selectors import feedback_by_label

    return feedback_by_label(labels=[rollout.active_version.label, rollout.candidate.label], since=rollout.started_at)


def rollouts_figures(*, rollouts: list[PromptRollout]) -> dict[int, dict[str, dict]]:
    """{rollout id: {"active", "candidate"}}: each arm's figures (``Arm.as_dict``) with its
    👍/👎 since the rollout started, for a page of rollouts read with their versions
    (``select_related("active_version__template", "candidate__template")``): the arms come
    from those versions, the feedback of every rollout from one query."""
    rollouts = list(rollouts)
    windows = [(version.label, rollout.started_at) for rollout in rollouts
               for version in (rollout.active_version, rollout.candidate)]
    if apps.is_installed("evals"):
        from evals.selectors import feedback_by_window

        votes = feedback_by_window(windows=windows)
    else:
        votes = [{"up": 0, "down": 0} for _ in windows]
    figures = {}
    for position, rollout in enumerate(rollouts):
        baseline = rollout.baseline or {}
        figures[rollout.pk] = {
            name: {**_arm(version, baseline.get(name, {})).as_dict(),
                   "feedback_up": votes[2 * position + offset]["up"],
                   "feedback_down": votes[2 * position + offset]["down"]}
            for offset, (name, version) in enumerate((("active", rollout.active_version),
                                                      ("candidate", rollout.candidate)))}
    return figures


def rollout_stop_verdict(*, rollout: PromptRollout, arms: dict[str, Arm]) -> dict | None:
    """The numbers that stop the rollout, or None while it may go on. Pure."""
    candidate, active = arms["candidate"], arms["active"]
    if candidate.uses < rollout.min_uses or candidate.failure_rate is None:
        return None
    # The active arm's rate in this rollout is the yardstick once it rests on as many uses as the
    # candidate's must; before that, its whole record (history and this rollout), so that a
    # single early success (0 %) or failure (100 %) of the active version decides nothing.
    if active.uses >= rollout.min_uses:
        active_rate = active.failure_rate
    else:
        before = (rollout.baseline or {}).get("active", {})
        uses, failures = int(before.get("uses", 0)) + active.uses, int(before.get("failures", 0)) + active.failures
        active_rate = failures / uses if uses else 0.0
    if candidate.failure_rate - active_rate <= rollout.failure_margin:
        return None
    return {"candidate": candidate.as_dict(), "active": active.as_dict(), "active_failure_rate": active_rate,
            "candidate_failure_rate": candidate.failure_rate, "failure_margin": rollout.failure_margin,
            "min_uses": rollout.min_uses}


def prompt_rollout_check(*, rollout: PromptRollout) -> bool:
    """Stop ``rollout`` automatically if its figures say so; True when this call stopped it."""
    if rollout.status != PromptRollout.Status.RUNNING:
        return False
    numbers = rollout_stop_verdict(rollout=rollout, arms=rollout_arms(rollout=rollout))
    if numbers is None:
        return False
    reason = (f"candidate failure rate {numbers['candidate_failure_rate']:.1%} over "
              f"{numbers['candidate']['uses']} uses exceeds the active version's "
              f"{numbers['active_failure_rate']:.1%} by more than {rollout.failure_margin:.1%}")
    # Conditional UPDATE: of two workers crossing the threshold together, one records the stop.
    stopped = PromptRollout.objects.filter(pk=rollout.pk, status=PromptRollout.Status.RUNNING).update(
        status=PromptRollout.Status.AUTO_STOPPED, ended_at=timezone.now(), stop_reason=reason, stop_numbers=numbers)
    if stopped:
        logger.warning("prompt rollout %s stopped automatically: %s", rollout.pk, reason)
        rollout.status, rollout.stop_reason, rollout.stop_numbers = PromptRollout.Status.AUTO_STOPPED, reason, numbers
    return bool(stopped)


def prompt_rollouts_check_candidate(*, version_id: int) -> None:
    for rollout in PromptRollout.objects.filter(candidate_id=version_id, status=PromptRollout.Status.RUNNING):
        prompt_rollout_check(rollout=rollout)


def prompt_rollouts_check_all() -> int:
    """Check every running rollout (the beat job); returns how many were stopped."""
    return sum(prompt_rollout_check(rollout=rollout)
               for rollout in PromptRollout.objects.filter(status=PromptRollout.Status.RUNNING))


def rollout_start_problem(*, candidate: PromptVersion, weight: float, failure_margin: float | None = None,
                          min_uses: int | None = None) -> tuple[str, str, type] | None:
    """(field, message, error class) of the first reason not to start, or None."""
    if not MIN_WEIGHT <= float(weight) <= 100:
        # Below 0.01 % no task id falls in the candidate's buckets (prompts/assignment.py).
        return "weight", f"the weight is a percentage between {MIN_WEIGHT} and 100", PromptError
    if min_uses is not None and int(min_uses) < 1:
        return "min_uses", "the minimum number of uses is at least 1", PromptError
    if failure_margin is not None and not 0 <= float(failure_margin) <= 1:
        return "failure_margin", "the failure margin is a fraction between 0 and 1", PromptError
    template = PromptTemplate.objects.get(pk=candidate.template_id)
    active = PromptVersion.objects.filter(template_id=candidate.template_id, is_active=True).first()
    if active is None:
        return "candidate", f"prompt {template.slug}: no active version to compare the candidate with", PromptError
    if active.pk == candidate.pk:
        return ("candidate", f"{template.slug}@{candidate.number} is the active version; choose another one",
                PromptError)
    if PromptRollout.objects.filter(template_id=candidate.template_id, status=PromptRollout.Status.RUNNING).exists():
        return "candidate", f"prompt {template.slug} already has a running rollout; promote or stop it first", Conflict
    return None


@transaction.atomic
def prompt_rollout_start(*, candidate: PromptVersion, weight: float, min_uses: int | None = None,
                         failure_margin: float | None = None, started_by=None) -> PromptRollout:
    """Serve ``candidate`` to ``weight`` percent of tasks beside its template's active version."""
    # The template row lock serialises this with activations and other starts.
    PromptTemplate.objects.select_for_update().get(pk=candidate.template_id)
    margin = settings.PROMPT_ROLLOUT_FAILURE_MARGIN if failure_margin is None else float(failure_margin)
    problem = rollout_start_problem(candidate=candidate, weight=weight, failure_margin=margin, min_uses=min_uses)
    if problem:
        field, message, error = problem
        raise error(message, field=field)
    versions = PromptVersion.objects.select_related("template")
    active = versions.get(template_id=candidate.template_id, is_active=True)
    candidate = versions.get(pk=candidate.pk)
    rollout = PromptRollout.objects.create(
        template_id=candidate.template_id, active_version=active, candidate=candidate, weight=float(weight),
        min_uses=settings.PROMPT_ROLLOUT_MIN_USES if min_uses is None else int(min_uses), failure_margin=margin,
        baseline={"active": _counters(active), "candidate": _counters(candidate)}, started_by=started_by)
    _audit(started_by, "prompt.rollout.start", rollout, after={"candidate": candidate.label, "weight": rollout.weight})
    return rollout


def _audit(actor, action: str, rollout: PromptRollout, **states) -> None:
    """One audit row per rollout change; automatic ends (no person) are recorded as "system"."""
    from workspaces.audit import audit_record

    audit_record(actor=actor or "system", action=action, target_type="prompt_rollout", target_id=rollout.pk,
                 **states)


def _end(rollout: PromptRollout, status: str, reason: str) -> PromptRollout:
    numbers = {name: arm.as_dict() for name, arm in rollout_arms(rollout=rollout).items()}
    ended = PromptRollout.objects.filter(pk=rollout.pk, status=PromptRollout.Status.RUNNING).update(
        status=status, ended_at=timezone.now(), stop_reason=reason, stop_numbers=numbers)
    if not ended:
        raise Conflict(f"rollout {rollout.pk} is not running")
    rollout.refresh_from_db()
    return rollout


@transaction.atomic
def prompt_rollout_promote(*, rollout: PromptRollout, by=None) -> PromptRollout:
    """End the rollout and make its candidate the active version."""
    from prompts.services import prompt_version_activate

    PromptTemplate.objects.select_for_update().get(pk=rollout.template_id)
    who = f" by {by}" if by else ""
    rollout = _end(rollout, PromptRollout.Status.PROMOTED, f"promoted{who}")
    prompt_version_activate(version=rollout.candidate)
    _audit(by, "prompt.rollout.promote", rollout, before={"status": "running"},
           after={"status": rollout.status, "reason": rollout.stop_reason})
    return rollout


@transaction.atomic
def prompt_rollout_stop(*, rollout: PromptRollout, by=None, reason: str = "") -> PromptRollout:
    """End the rollout; every task goes back to the active version."""
    PromptTemplate.objects.select_for_update().get(pk=rollout.template_id)
    rollout = _end(rollout, PromptRollout.Status.STOPPED, reason or f"stopped{f' by {by}' if by else ''}")
    _audit(by, "prompt.rollout.stop", rollout, before={"status": "running"},
           after={"status": rollout.status, "reason": rollout.stop_reason})
    return rollout
