"""Prompt version creation, edits and activation, and rollouts: one audit row each, in no
workspace (prompts are shared); the shipped defaults (no author) write none."""

from __future__ import annotations

from workspaces.models import AuditEvent


def new_rows(before: int) -> list[tuple[str, str]]:
    return [(event.action, event.actor) for event in AuditEvent.objects.order_by("id")[before:]]


def test_prompt_changes_write_one_row_each(staff_user):
    from prompts.rollouts import prompt_rollout_promote, prompt_rollout_start, prompt_rollout_stop
    from prompts.services import prompt_template_create, prompt_version_activate, prompt_version_create

    count = AuditEvent.objects.count()
    template = prompt_template_create(slug="audit-demo")
    first = prompt_version_create(template=template, body="Hello.", activate=True)  # no author: not audited
    assert new_rows(count) == []
    second = prompt_version_create(template=template, body="Hello there.", created_by=staff_user)
    assert new_rows(count) == [("prompt.version.create", "staff")]
    count = AuditEvent.objects.count()
    prompt_version_activate(version=second, actor=staff_user)
    event = AuditEvent.objects.latest("id")
    assert new_rows(count) == [("prompt.version.activate", "staff")]
    assert event.workspace_id is None and event.before == {"active_number": 1} and event.after["active_number"] == 2
    count = AuditEvent.objects.count()
    rollout = prompt_rollout_start(candidate=first, weight=10, started_by=staff_user)
    prompt_rollout_stop(rollout=rollout, by=staff_user)
    rollout = prompt_rollout_start(candidate=first, weight=10, started_by=staff_user)
    prompt_rollout_promote(rollout=rollout)  # ended by itself: "system", and one row, not two
    assert new_rows(count) == [("prompt.rollout.start", "staff"), ("prompt.rollout.stop", "staff"),
                               ("prompt.rollout.start", "staff"), ("prompt.rollout.promote", "system")]
